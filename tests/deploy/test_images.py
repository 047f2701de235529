"""The container images of scripts/build-images.sh, run without a container runtime: each
image's root filesystem is mounted with `buildah mount` and its binaries run in a chroot of it
as the image's user 65532, on the host's loopback. A controller from the controller image,
an agent from the agent image that joins it, a service pushed with straitctl from the
controller image, and curl on the host fetching a blob through that service show that each
image holds every file its binaries need and nothing that needs a shell.

Needs root, buildah and the binaries of build/release, or of the build dir in
$STRAIT_RELEASE_DIR: a sanitized build (asan) works too, at the cost of 600 MB of images
(the test then mounts /proc in the chroot, which the sanitizer runtime reads).
The images are built for the test under a tag of their own and removed after it;
$STRAIT_TEST_IMAGE_TAG=TAG tests the images localhost/strait-{controller,agent}:TAG instead."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

BUILD_IMAGES = st.REPO_ROOT / "scripts" / "build-images.sh"
IMAGE_BUILD_TIMEOUT = 300.0
NONROOT = "65532:65532"
# What runs in a chroot gets this environment only; leak checks of sanitized binaries are
# the integration tests' business, and would need /proc/PID/task at exit.
CHROOT_ENV = {"HOME": "/nonexistent", "ASAN_OPTIONS": "detect_leaks=0"}
CURL_TIMEOUT = "10"
CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"


def release_dir() -> Path:
    path = Path(os.environ.get("STRAIT_RELEASE_DIR", "build/release"))
    return path if path.is_absolute() else st.REPO_ROOT / path


def missing_requirement() -> str:
    """Why this machine cannot run the test, or ""."""
    if os.geteuid() != 0:
        return "needs root (buildah mount and chroot)"
    if not st.have("buildah"):
        return "buildah is not installed (apt-get install -y buildah)"
    if not st.have("curl"):
        return "curl is not installed"
    if os.environ.get("STRAIT_TEST_IMAGE_TAG"):
        return ""
    for binary in ("agent/strait-agent", "controller/strait-controller", "controller/straitctl"):
        if not (release_dir() / binary).is_file():
            return f"no release binary {release_dir() / binary}: cmake --preset release && cmake --build --preset release"
    return ""


def buildah(*args, timeout: float = st.RUN_TIMEOUT) -> str:
    result = st.run(["buildah", *args], timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"buildah {' '.join(map(str, args))} failed: {result.stderr.decode()}")
    return result.stdout.decode().strip()


MISSING = missing_requirement()


@unittest.skipIf(MISSING, MISSING)
class ContainerImageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tag = os.environ.get("STRAIT_TEST_IMAGE_TAG")
        cls.built = tag is None
        cls.tag = tag or f"test-{os.getpid()}"
        cls.controller_image = f"localhost/strait-controller:{cls.tag}"
        cls.agent_image = f"localhost/strait-agent:{cls.tag}"
        if cls.built:
            started = time.monotonic()
            result = st.run(["bash", BUILD_IMAGES, "--build-dir", release_dir(), "--tag", cls.tag],
                            timeout=IMAGE_BUILD_TIMEOUT)
            output = (result.stdout + result.stderr).decode()
            if result.returncode != 0:
                cls.remove_images()
                raise AssertionError(f"build-images.sh failed ({result.returncode}):\n{output}")
            print(f"\nbuild-images.sh: {time.monotonic() - started:.1f} s\n{output}", file=sys.stderr)

    @classmethod
    def tearDownClass(cls):
        if cls.built:
            cls.remove_images()

    @classmethod
    def remove_images(cls):
        st.run(["buildah", "rmi", "--force", cls.controller_image, cls.agent_image])

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="strait-images-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = Path(self._tmp.name)

    def mount(self, image: str) -> Path:
        """The root filesystem of a new working container of `image` (removed after the test);
        what runs in it writes to that container's own layer."""
        container = buildah("from", "--pull-never", image)
        self.addCleanup(buildah, "rm", container)
        root = Path(buildah("mount", container))
        if any((root / "usr" / "lib").rglob("libasan.so*")):
            (root / "proc").mkdir(exist_ok=True)
            subprocess.run(["mount", "-t", "proc", "proc", root / "proc"], check=True, timeout=st.RUN_TIMEOUT)
            self.addCleanup(subprocess.run, ["umount", root / "proc"], check=True, timeout=st.RUN_TIMEOUT)
        return root

    def chroot(self, root: Path, *argv, user: str = NONROOT, **kwargs) -> subprocess.CompletedProcess:
        return st.run([CHROOT, f"--userspec={user}", root, *argv], env=CHROOT_ENV, **kwargs)

    def start_in(self, root: Path, name: str, *argv) -> st.Process:
        process = st.Process([CHROOT, f"--userspec={NONROOT}", root, *argv], self.tmp, name, env=CHROOT_ENV)
        self.addCleanup(process.stop)
        if os.environ.get("STRAIT_TEST_SHOW_LOGS"):
            self.addCleanup(lambda: print(f"\n--- {process.describe()}"))
        return process

    def config(self, image: str) -> dict:
        return json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]

    def test_binaries_run_as_nonroot(self):
        controller_root = self.mount(self.controller_image)
        agent_root = self.mount(self.agent_image)
        for root, argv, expected in [
            (controller_root, ["/usr/local/bin/strait-controller", "--version"], b"strait-controller "),
            (controller_root, ["/usr/local/bin/straitctl", "--help"], b"straitctl"),
            # strait-agent keeps GOST's -V (it has no --version).
            (agent_root, ["/usr/local/bin/strait-agent", "-V"], b"strait-agent "),
        ]:
            with self.subTest(argv=argv):
                result = self.chroot(root, *argv)
                self.assertEqual(result.returncode, 0, result.stderr.decode())
                self.assertIn(expected, result.stdout)

    def test_images_have_no_shell_and_run_as_nonroot_with_a_data_volume(self):
        for image, binary, command, volume, ports in [
            (self.controller_image, "strait-controller", ["--data-dir", "/var/lib/strait-controller"],
             "/var/lib/strait-controller", {"7770/tcp", "7771/tcp", "7772/tcp"}),
            (self.agent_image, "strait-agent", None, "/var/lib/strait-agent", set()),
        ]:
            with self.subTest(image=image):
                config = self.config(image)
                self.assertEqual(config.get("User"), NONROOT)
                self.assertEqual((config["Entrypoint"], config.get("Cmd")), ([f"/usr/local/bin/{binary}"], command))
                self.assertEqual(set(config.get("Volumes", {})), {volume})
                self.assertEqual(set(config.get("ExposedPorts") or {}), ports)
                self.assertEqual(config["Labels"]["org.opencontainers.image.title"], binary)
                self.assertRegex(config["Labels"]["org.opencontainers.image.version"], r"^\d+\.\d+\.\d+$")
                root = self.mount(image)
                programs = sorted(path.name for path in (root / "usr").rglob("*")
                                  if path.is_file() and os.access(path, os.X_OK) and ".so" not in path.name)
                self.assertEqual(programs, sorted([binary] + (["straitctl"] if binary == "strait-controller" else [])),
                                 "the only programs are ours: no shell, no coreutils")
                self.assertEqual((root / volume.lstrip("/")).stat().st_uid, 65532, f"{volume} is writable by 65532")

    def test_agent_image_joins_controller_image_and_serves_a_pushed_service(self):
        controller_root = self.mount(self.controller_image)
        agent_root = self.mount(self.agent_image)
        agent_port, admin_port, http_port, service_port = (st.free_port() for _ in range(4))
        data = "/var/lib/strait-controller"
        controller = self.start_in(
            controller_root, "controller", "/usr/local/bin/strait-controller", "--data-dir", data,
            "--listen-agents", f"127.0.0.1:{agent_port}", "--listen-admin", f"127.0.0.1:{admin_port}",
            "--listen-http", f"127.0.0.1:{http_port}")
        controller.wait_tcp(http_port)
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=st.IO_TIMEOUT) as response:
            self.assertEqual(response.status, 200)

        # The agent gets the controller's CA and bootstrap token as an operator would hand
        # them over: copies in its own filesystem, readable by its user only.
        for name in ("ca.pem", "join.token"):
            target = agent_root / "tmp" / name
            shutil.copyfile(controller_root / data.lstrip("/") / name, target)
            os.chown(target, 65532, 65532)
            target.chmod(0o600)
        agent = self.start_in(
            agent_root, "agent", "/usr/local/bin/strait-agent", "--controller", f"127.0.0.1:{agent_port}",
            "--join-token-file", "/tmp/join.token", "--ca-file", "/tmp/ca.pem", "--agent-id", "image-agent",
            "--state-dir", "/var/lib/strait-agent")

        blob = st.random_blob()
        origin = st.http_origin({"/blob": blob})
        self.addCleanup(origin.close)

        def ctl(*args, input_text: str = None) -> str:
            result = self.chroot(controller_root, "/usr/local/bin/straitctl", "--controller",
                                 f"127.0.0.1:{admin_port}", "--ca-file", f"{data}/ca.pem", "--token-file",
                                 f"{data}/admin.token", *args,
                                 input=input_text.encode() if input_text is not None else None)
            if result.returncode != 0:
                raise AssertionError(f"straitctl {' '.join(args)} failed: {result.stderr.decode()}\n"
                                     f"{controller.describe()}\n{agent.describe()}")
            return result.stdout.decode()

        def connected():
            agents = json.loads(ctl("agents", "-o", "json") or "{}").get("agents", [])
            return any(a["id"] == "image-agent" and a.get("connected") for a in agents)

        try:
            st.wait_until(connected, st.READY_TIMEOUT, interval=0.1, what="image-agent connected")
        except TimeoutError as error:
            raise AssertionError(f"{error}\n{controller.describe()}\n{agent.describe()}") from None
        applied = ctl("apply", "-f", "-", input_text=(
            "kind: Service\nmetadata: {name: to-origin}\n"
            f"spec: {{addr: \"127.0.0.1:{service_port}\", handler: {{type: tcp}}, listener: {{type: tcp}}, "
            f"forwarder: {{nodes: [{{name: origin, addr: \"127.0.0.1:{origin.port}\"}}]}}}}\n"))
        self.assertIn("service/to-origin created", applied)
        agent.wait_tcp(service_port)

        result = st.run(["curl", "-sS", "--max-time", CURL_TIMEOUT, f"http://127.0.0.1:{service_port}/blob"])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        self.assertEqual((len(result.stdout), st.sha256(result.stdout)), (len(blob), st.sha256(blob)),
                         "the blob through the agent image's service")
        # The agent kept its identity in the image's data volume, written as 65532.
        state = agent_root / "var/lib/strait-agent"
        self.assertTrue(any(path.stat().st_uid == 65532 for path in state.iterdir()), "the agent wrote its state")


if __name__ == "__main__":
    unittest.main()
