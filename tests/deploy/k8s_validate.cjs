// Validates rendered Kubernetes manifests offline and prints them as JSON.
//
//   node tests/deploy/k8s_validate.cjs NODE_MODULES_DIR < manifests.yaml
//
// Prints {"documents": [...], "problems": [...], "notes": [...]}: every YAML document as JSON (so
// Python's standard library can read them), and what is wrong with each. Built-in kinds are
// checked by kubernetes-models (types, required fields, enums) and, since the API server's
// schemas leave unknown fields open, against the field names in kubernetes-models' type
// declarations as well: a misspelt field the server would drop silently is a problem here.
// cert-manager's Certificate and the Prometheus Operator's ServiceMonitor are not built in: a
// subset of their CRD schemas, the fields this chart writes, is checked with ajv.
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const modulesDir = path.resolve(process.argv[2] || "");
const need = createRequire(path.join(modulesDir, "noop.js"));
const YAML = need("yaml");
const Ajv = need("ajv");

// --- Field names from kubernetes-models' .d.ts files -------------------------------------

const declarations = new Map(); // .d.ts path -> {fields, imports} (fields null: not an interface)

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

function parseDeclaration(file) {
  if (declarations.has(file)) return declarations.get(file);
  const text = stripComments(fs.readFileSync(file, "utf8"));
  const imports = new Map();
  for (const match of text.matchAll(/import \{([^}]*)\} from "([^"]+)";/g)) {
    for (const name of match[1].split(",").map((s) => s.trim()).filter(Boolean)) imports.set(name, match[2]);
  }
  const result = { fields: null, imports, file };
  const start = text.search(/export interface I\w+( extends [\w, ]+)? \{/);
  if (start >= 0) {
    let i = text.indexOf("{", start) + 1;
    let depth = 1;
    const bodyStart = i;
    while (depth > 0 && i < text.length) {
      if (text[i] === "{") depth++;
      if (text[i] === "}") depth--;
      i++;
    }
    result.fields = parseFields(text.slice(bodyStart, i - 1));
  }
  declarations.set(file, result);
  return result;
}

// `"name"?: Type;` entries at depth 0 of an interface body -> Map(name -> type text).
function parseFields(body) {
  const fields = new Map();
  let i = 0;
  while (i < body.length) {
    const match = /"([^"]+)"\??:\s*/y;
    match.lastIndex = i;
    const found = match.exec(body);
    if (!found) {
      i++;
      continue;
    }
    let j = match.lastIndex;
    let depth = 0;
    while (j < body.length && !(depth === 0 && body[j] === ";")) {
      if ("{<(".includes(body[j])) depth++;
      if ("}>)".includes(body[j])) depth--;
      j++;
    }
    fields.set(found[1], body.slice(match.lastIndex, j).trim());
    i = j + 1;
  }
  return fields;
}

function resolveImport(fromFile, specifier) {
  const base = specifier.startsWith(".") ? path.resolve(path.dirname(fromFile), specifier) : path.join(modulesDir, specifier);
  return base + ".d.ts";
}

// Reports fields of `value` that `type` (a type text in `decl`'s file) does not declare.
function checkFields(value, type, decl, where, problems) {
  if (value === null || value === undefined) return;
  type = type.trim();
  let match;
  if ((match = /^Array<([\s\S]*)>$/.exec(type))) {
    if (Array.isArray(value)) value.forEach((item, index) => checkFields(item, match[1], decl, `${where}[${index}]`, problems));
    return;
  }
  if ((match = /^\{\s*\[key: string\]:\s*([\s\S]*?);?\s*\}$/.exec(type))) {
    if (value && typeof value === "object") {
      for (const [key, item] of Object.entries(value)) checkFields(item, match[1], decl, `${where}.${key}`, problems);
    }
    return;
  }
  if (!/^I\w+$/.test(type) || !decl.imports.has(type)) return; // a scalar, a union of literals
  const target = parseDeclaration(resolveImport(decl.file, decl.imports.get(type)));
  checkObject(value, target, where, problems);
}

function checkObject(value, decl, where, problems) {
  if (!decl.fields || !value || typeof value !== "object" || Array.isArray(value)) return;
  for (const [key, item] of Object.entries(value)) {
    if (!decl.fields.has(key)) {
      problems.push(`${where}.${key}: unknown field (known: ${[...decl.fields.keys()].join(", ")})`);
      continue;
    }
    checkFields(item, decl.fields.get(key), decl, `${where}.${key}`, problems);
  }
}

// --- Built-in kinds -------------------------------------------------------------------------

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return path.join(group ? group : "", version, kind);
}

function validateBuiltIn(doc, problems) {
  const relative = modelPath(doc.apiVersion, doc.kind);
  const declaration = path.join(modulesDir, "kubernetes-models", relative + ".d.ts");
  if (!fs.existsSync(declaration)) return false;
  const Model = need(`kubernetes-models/${relative}`)[doc.kind];
  try {
    new Model(doc).validate();
  } catch (error) {
    problems.push(error.message);
  }
  checkObject(doc, parseDeclaration(declaration), "", problems);
  return true;
}

// --- CRD kinds: the fields this chart writes ------------------------------------------------

const duration = { type: "string", pattern: "^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$" };
const promDuration = { type: "string", pattern: "^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$" };
const stringList = { type: "array", items: { type: "string" } };
const stringMap = { type: "object", additionalProperties: { type: "string" } };
const metadata = {
  type: "object",
  required: ["name"],
  properties: { name: { type: "string", minLength: 1 }, namespace: { type: "string" }, labels: stringMap, annotations: stringMap },
};
const relabel = {
  type: "object",
  additionalProperties: false,
  properties: {
    sourceLabels: stringList, separator: { type: "string" }, targetLabel: { type: "string" }, regex: { type: "string" },
    modulus: { type: "integer" }, replacement: { type: "string" },
    action: { enum: ["replace", "Replace", "keep", "Keep", "drop", "Drop", "hashmod", "HashMod", "labelmap", "LabelMap",
      "labeldrop", "LabelDrop", "labelkeep", "LabelKeep", "lowercase", "Lowercase", "uppercase", "Uppercase",
      "keepequal", "KeepEqual", "dropequal", "DropEqual"] },
  },
};
const keyUsages = ["signing", "digital signature", "content commitment", "key encipherment", "key agreement",
  "data encipherment", "cert sign", "crl sign", "encipher only", "decipher only", "any", "server auth", "client auth",
  "code signing", "email protection", "s/mime", "ipsec end system", "ipsec tunnel", "ipsec user", "timestamping",
  "ocsp signing", "microsoft sgc", "netscape sgc"];

// An object of a CRD kind whose spec has exactly `properties`, `required` among them.
function crd(apiVersion, kind, required, properties) {
  return {
    type: "object",
    required: ["apiVersion", "kind", "metadata", "spec"],
    properties: {
      apiVersion: { const: apiVersion }, kind: { const: kind }, metadata,
      spec: { type: "object", additionalProperties: false, required, properties },
    },
  };
}

const crdSchemas = {
  "cert-manager.io/v1/Certificate": crd("cert-manager.io/v1", "Certificate", ["secretName", "issuerRef"], {
    secretName: { type: "string", minLength: 1 },
    issuerRef: {
      type: "object", additionalProperties: false, required: ["name"],
      properties: { name: { type: "string", minLength: 1 }, kind: { type: "string" }, group: { type: "string" } },
    },
    commonName: { type: "string", maxLength: 64 },
    dnsNames: stringList,
    ipAddresses: stringList,
    duration, renewBefore: duration,
    privateKey: {
      type: "object", additionalProperties: false,
      properties: {
        algorithm: { enum: ["RSA", "ECDSA", "Ed25519"] }, size: { type: "integer" },
        rotationPolicy: { enum: ["Never", "Always"] }, encoding: { enum: ["PKCS1", "PKCS8"] },
      },
    },
    usages: { type: "array", items: { enum: keyUsages } },
  }),
  "monitoring.coreos.com/v1/ServiceMonitor": crd("monitoring.coreos.com/v1", "ServiceMonitor", ["selector", "endpoints"], {
    selector: {
      type: "object", additionalProperties: false,
      properties: { matchLabels: stringMap, matchExpressions: { type: "array" } },
    },
    namespaceSelector: {
      type: "object", additionalProperties: false,
      properties: { any: { type: "boolean" }, matchNames: stringList },
    },
    endpoints: {
      type: "array",
      items: {
        type: "object", additionalProperties: false,
        properties: {
          port: { type: "string" }, path: { type: "string" }, scheme: { enum: ["http", "https", "HTTP", "HTTPS"] },
          interval: promDuration, scrapeTimeout: promDuration,
          relabelings: { type: "array", items: relabel }, metricRelabelings: { type: "array", items: relabel },
        },
      },
    },
  }),
};

const ajv = new Ajv({ allErrors: true, strict: false });
const crdValidators = Object.fromEntries(Object.entries(crdSchemas).map(([key, schema]) => [key, ajv.compile(schema)]));

function validateCrd(doc, problems) {
  const validate = crdValidators[`${doc.apiVersion}/${doc.kind}`];
  if (!validate) return false;
  if (!validate(doc)) {
    for (const error of validate.errors) problems.push(`${error.instancePath || "/"} ${error.message} ${JSON.stringify(error.params)}`);
  }
  return true;
}

// --- Main -------------------------------------------------------------------------------------

const input = fs.readFileSync(0, "utf8");
const out = { documents: [], problems: [], notes: [] };
for (const parsed of YAML.parseAllDocuments(input)) {
  if (parsed.errors.length) {
    out.problems.push({ document: null, problem: parsed.errors.map((e) => e.message).join("; ") });
    continue;
  }
  const doc = parsed.toJS();
  if (doc === null || doc === undefined) continue;
  out.documents.push(doc);
  const name = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
  const problems = [];
  if (typeof doc.apiVersion !== "string" || typeof doc.kind !== "string") {
    problems.push("no apiVersion or kind");
  } else if (!validateBuiltIn(doc, problems) && !validateCrd(doc, problems)) {
    out.notes.push(`${name} (${doc.apiVersion}): no schema known, not checked`);
  }
  for (const problem of problems) out.problems.push({ document: name, problem });
}
process.stdout.write(JSON.stringify(out));
