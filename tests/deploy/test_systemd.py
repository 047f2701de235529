"""The systemd units of deploy/systemd and scripts/install.sh: every unit passes
`systemd-analyze verify` without a warning, every unit's exposure (`systemd-analyze
security --offline=true`) is at most 2.0, and install.sh lays out exactly the files it
promises, keeps existing env files and changes nothing with --dry-run; scripts/package.sh's
tarball holds what install.sh installs from a build tree.

systemd need not run: the units are verified in a temporary root made by install.sh --root,
with systemd's own units and /usr/bin/kill (ExecReload=) copied in. Stand-in executables take
the binaries' place, since verify only checks that ExecStart= names an executable file."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import strait_test as st  # noqa: E402

INSTALL = st.REPO_ROOT / "scripts" / "install.sh"
PACKAGE = st.REPO_ROOT / "scripts" / "package.sh"
UNIT_DIR = st.REPO_ROOT / "deploy" / "systemd"
BINARIES = {"strait-agent": "agent", "strait-controller": "controller", "straitctl": "controller"}
# The template is verified through an instance: systemd loads strait-agent@.service for it.
UNITS = ["strait-agent.service", "strait-agent@edge.service", "strait-controller.service"]
MAX_EXPOSURE = 2.0
HOST_UNITS = Path("/usr/lib/systemd/system")


def project_version() -> str:
    text = (st.REPO_ROOT / "CMakeLists.txt").read_text()
    return re.search(r"project\(strait VERSION (\d+\.\d+\.\d+)", text).group(1)


def fake_build_dir(parent: Path) -> Path:
    """A build tree shaped like build/release whose binaries are stand-ins that print the
    project's version, as -V does."""
    build = parent / "build"
    for name, folder in BINARIES.items():
        path = build / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"#!/bin/sh\necho {name} {project_version()}\n")
        path.chmod(0o755)
    return build


def install(*args) -> subprocess.CompletedProcess:
    result = st.run(["bash", INSTALL, *args])
    result.stdout, result.stderr = result.stdout.decode(), result.stderr.decode()
    if result.returncode != 0:
        raise AssertionError(f"install.sh {' '.join(map(str, args))} failed ({result.returncode}):\n"
                             f"{result.stdout}{result.stderr}")
    return result


def tree(root: Path) -> dict:
    """Every file and directory under `root` (relative path -> octal mode)."""
    out = {}
    for path in sorted(root.rglob("*")):
        out[str(path.relative_to(root))] = oct(path.lstat().st_mode & 0o7777)
    return out


class InstallRootTestCase(unittest.TestCase):
    """A temp dir per test with a stand-in build tree (`build`) and an empty `root` for
    install.sh --root."""

    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="strait-install-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = Path(self._tmp.name)
        self.build = fake_build_dir(self.tmp)
        self.root = self.tmp / "root"
        self.root.mkdir()


@unittest.skipUnless(st.have("systemd-analyze"), "systemd-analyze is not installed (apt-get install systemd)")
@unittest.skipUnless(HOST_UNITS.is_dir(), f"no {HOST_UNITS} to copy into the test root")
class SystemdUnitTest(InstallRootTestCase):
    def system_root(self, prefix: str = "/usr/local") -> Path:
        """install.sh's layout plus what systemd-analyze needs to load units in a root:
        its own units (sysinit.target, ...) and the programs the units run besides ours."""
        install("--build-dir", self.build, "--root", self.root, "--prefix", prefix)
        (self.root / "usr" / "lib" / "systemd").mkdir(parents=True)
        shutil.copytree(HOST_UNITS, self.root / "usr" / "lib" / "systemd" / "system", symlinks=True)
        (self.root / "usr" / "bin").mkdir(exist_ok=True)
        shutil.copy2(shutil.which("kill") or "/usr/bin/kill", self.root / "usr" / "bin" / "kill")
        for merged in ("bin", "lib"):  # Debian 12 is usr-merged: /bin/kill is /usr/bin/kill
            (self.root / merged).symlink_to(f"usr/{merged}")
        return self.root

    def verify(self, root: Path, unit: str) -> None:
        result = st.run(["systemd-analyze", "verify", f"--root={root}", unit])
        output = (result.stdout + result.stderr).decode()
        # verify exits 0 after a warning such as "Unknown key 'RestartSteps'": any output fails.
        self.assertEqual((result.returncode, output), (0, ""), f"systemd-analyze verify {unit}")

    def exposure(self, root: Path, unit: str) -> float:
        result = st.run(["systemd-analyze", "security", "--offline=true", f"--root={root}", "--no-pager", unit])
        output = (result.stdout + result.stderr).decode()
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", output)
        self.assertIsNotNone(match, f"no exposure level for {unit} in:\n{output}")
        return float(match.group(1))

    def test_every_unit_verifies_without_warnings(self):
        root = self.system_root()
        for unit in UNITS:
            with self.subTest(unit=unit):
                self.verify(root, unit)

    def test_units_with_another_prefix_verify_and_run_from_it(self):
        root = self.system_root("/opt/strait")
        for unit in UNITS:
            with self.subTest(unit=unit):
                self.verify(root, unit)
        agent_unit = (root / "etc/systemd/system/strait-agent.service").read_text()
        self.assertRegex(agent_unit, r"(?m)^ExecStart=/opt/strait/bin/strait-agent ")
        self.assertNotIn("/usr/local/bin", agent_unit)

    def test_exposure_of_every_unit_is_at_most_two(self):
        root = self.system_root()
        scores = {unit: self.exposure(root, unit) for unit in UNITS}
        print("\nsystemd-analyze security exposure: " +
              ", ".join(f"{unit} {score}" for unit, score in scores.items()), file=sys.stderr)
        for unit, score in scores.items():
            with self.subTest(unit=unit):
                self.assertLessEqual(score, MAX_EXPOSURE, f"{unit} exposure")

    def test_agent_units_reload_with_sighup_and_stop_after_the_drain(self):
        for name in ("strait-agent.service", "strait-agent@.service"):
            text = (UNIT_DIR / name).read_text()
            with self.subTest(unit=name):
                self.assertRegex(text, r"(?m)^ExecReload=/bin/kill -HUP \$MAINPID$")
                drain = int(re.search(r"STRAIT_DRAIN_TIMEOUT=(\d+)s", text).group(1))
                stop = int(re.search(r"(?m)^TimeoutStopSec=(\d+)s$", text).group(1))
                self.assertGreater(stop, drain, "systemd would SIGKILL the agent while it drains")
                self.assertRegex(text, r"--state-dir \$\{STATE_DIRECTORY\}")


class InstallScriptTest(InstallRootTestCase):
    def test_layout(self):
        result = install("--build-dir", self.build, "--root", self.root)
        self.assertEqual(tree(self.root), {
            "etc": "0o755",
            "etc/strait": "0o755",
            "etc/strait/agent.env": "0o600",
            "etc/strait/controller.env": "0o600",
            "etc/systemd": "0o755",
            "etc/systemd/system": "0o755",
            "etc/systemd/system/strait-agent.service": "0o644",
            "etc/systemd/system/strait-agent@.service": "0o644",
            "etc/systemd/system/strait-controller.service": "0o644",
            "usr": "0o755",
            "usr/local": "0o755",
            "usr/local/bin": "0o755",
            "usr/local/bin/strait-agent": "0o755",
            "usr/local/bin/strait-controller": "0o755",
            "usr/local/bin/straitctl": "0o755",
        })
        self.assertEqual((self.root / "usr/local/bin/straitctl").read_bytes(),
                         (self.build / "controller/straitctl").read_bytes())
        self.assertEqual((self.root / "etc/systemd/system/strait-agent.service").read_bytes(),
                         (UNIT_DIR / "strait-agent.service").read_bytes(), "the default prefix changes no unit")
        self.assertEqual((self.root / "etc/strait/agent.env").read_bytes(),
                         (UNIT_DIR / "agent.env.example").read_bytes())
        self.assertIn("no daemon-reload", result.stdout)

    def test_existing_env_files_are_kept_and_binaries_replaced(self):
        install("--build-dir", self.build, "--root", self.root)
        env = self.root / "etc/strait/agent.env"
        env.write_text("STRAIT_CONTROLLER=10.0.0.1:7770\n")
        (self.build / "agent/strait-agent").write_text("#!/bin/sh\necho new\n")
        result = install("--build-dir", self.build, "--root", self.root)
        self.assertEqual(env.read_text(), "STRAIT_CONTROLLER=10.0.0.1:7770\n")
        self.assertRegex(result.stdout, r"keep \S+/etc/strait/agent\.env \(exists\)")
        self.assertEqual((self.root / "usr/local/bin/strait-agent").read_text(), "#!/bin/sh\necho new\n")
        self.assertFalse(list(self.root.rglob("*.new")), "no temporary file is left behind")

    def test_dry_run_changes_nothing(self):
        result = install("--build-dir", self.build, "--root", self.root, "--dry-run")
        self.assertEqual(tree(self.root), {})
        self.assertIn("would run: install -m 0755", result.stdout)

    def test_missing_binary_is_refused(self):
        (self.build / "controller/straitctl").unlink()
        result = st.run(["bash", INSTALL, "--build-dir", self.build, "--root", self.root])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"straitctl", result.stderr)
        self.assertEqual(tree(self.root), {}, "nothing is installed when a binary is missing")


class PackageTest(InstallRootTestCase):
    def test_tarball_holds_the_release_and_installs_like_the_tree(self):
        out = self.tmp / "dist"
        result = st.run(["bash", PACKAGE, "--build-dir", self.build, "--out", out, "--no-deb"])
        self.assertEqual(result.returncode, 0, result.stderr.decode())
        arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip() \
            if shutil.which("dpkg") else os.uname().machine
        top = f"strait-{project_version()}-linux-{arch}"
        tarball = out / f"{top}.tar.gz"
        listing = st.run(["tar", "-tzf", tarball]).stdout.decode().split()
        self.assertEqual(sorted(listing), sorted([
            f"{top}/", f"{top}/README.md", f"{top}/install.sh", f"{top}/bin/", f"{top}/bin/strait-agent",
            f"{top}/bin/strait-controller", f"{top}/bin/straitctl", f"{top}/systemd/",
            f"{top}/systemd/agent.env.example", f"{top}/systemd/controller.env.example",
            f"{top}/systemd/strait-agent.service", f"{top}/systemd/strait-agent@.service",
            f"{top}/systemd/strait-controller.service", f"{top}/docs/",
            *(f"{top}/docs/{doc.name}" for doc in (st.REPO_ROOT / "docs").glob("*.md"))]))
        install("--tarball", tarball, "--root", self.root)
        from_tree = self.tmp / "from-tree"
        from_tree.mkdir()
        install("--build-dir", self.build, "--root", from_tree)
        self.assertEqual(tree(self.root), tree(from_tree))
        self.assertEqual((self.root / "usr/local/bin/strait-agent").read_bytes(),
                         (self.build / "agent/strait-agent").read_bytes())

    def test_a_binary_of_another_version_is_refused(self):
        (self.build / "agent/strait-agent").write_text("#!/bin/sh\necho strait-agent 9.9.9\n")
        result = st.run(["bash", PACKAGE, "--build-dir", self.build, "--out", self.tmp / "dist", "--no-deb"])
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(b"9.9.9", result.stderr)


if __name__ == "__main__":
    unittest.main()
