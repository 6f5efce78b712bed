// The contract as the tests use it: api/openapi.yaml loaded once, its component schemas compiled
// by Ajv (JSON Schema 2020-12, strict mode, formats checked), and lookups from a real request
// (method + path) and answer (status, content type) to the documented response.
//
// Schemas are compiled from the document itself: every `#/components/schemas/X` reference is
// rewritten to a URN that points into one registered container schema ({$defs: every component
// schema}), so a schema is checked exactly as written, with no copy that could drift.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import YAML from 'yaml';

const here = path.dirname(fileURLToPath(import.meta.url));
export const SOURCE_DIR = process.env.BASINLAB_SOURCE_DIR || path.resolve(here, '..', '..');
export const OPENAPI_PATH = path.join(SOURCE_DIR, 'api', 'openapi.yaml');

const SCHEMAS_URN = 'urn:basinlab:openapi:schemas';
const SCHEMA_REF_PREFIX = '#/components/schemas/';
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/* A deep copy of `value` with component-schema references pointed into the container schema. */
function rewriteRefs(value) {
  if (Array.isArray(value)) return value.map(rewriteRefs);
  if (value === null || typeof value !== 'object') return value;
  const out = {};
  for (const [key, v] of Object.entries(value)) {
    if (key === '$ref' && typeof v === 'string' && v.startsWith(SCHEMA_REF_PREFIX)) {
      out[key] = `${SCHEMAS_URN}#/$defs/${v.slice(SCHEMA_REF_PREFIX.length)}`;
    } else {
      out[key] = rewriteRefs(v);
    }
  }
  return out;
}

/* Media type without parameters, lower case ("text/csv; charset=utf-8" → "text/csv"). */
export function mediaType(contentType) {
  return (contentType || '').split(';')[0].trim().toLowerCase();
}

export function isJsonMedia(media) {
  return media === 'application/json' || media.endsWith('+json');
}

/* Every `$ref` string anywhere in value, with the JSON path where it occurs. */
export function collectRefs(value, where = '#', out = []) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => collectRefs(v, `${where}/${i}`, out));
  } else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') out.push({ ref: v, where });
      else collectRefs(v, `${where}/${key}`, out);
    }
  }
  return out;
}

/* The value at an RFC 6901 pointer ("#/a/b") inside doc, or undefined. */
export function pointerGet(doc, ref) {
  if (!ref.startsWith('#')) return undefined;
  let node = doc;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || !(key in node)) return undefined;
    node = node[key];
  }
  return node;
}

export class Contract {
  constructor(file = OPENAPI_PATH) {
    this.file = file;
    this.text = readFileSync(file, 'utf8');
    this.doc = YAML.parse(this.text);
    this.ajv = new Ajv2020({ strict: true, strictTypes: false, strictRequired: false, allErrors: true });
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: SCHEMAS_URN, $defs: rewriteRefs(this.doc.components.schemas) });
    this.compiled = new Map();
    // Literal paths win over templated ones (OpenAPI's rule, and the router's table order).
    const params = (t) => (t.match(/\{/g) || []).length;
    const entries = Object.entries(this.doc.paths).sort((a, b) => params(a[0]) - params(b[0]));
    this.routes = entries.map(([template, item]) => ({
      template,
      item,
      regex: new RegExp(
        '^' +
          template
            .split(/(\{[^}]+\})/)
            .map((part) =>
              part.startsWith('{') ? '([^/]+)' : part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'),
            )
            .join('') +
          '$',
      ),
    }));
  }

  /* Follow `$ref` (local pointers) until a non-reference object. */
  resolve(obj) {
    let node = obj;
    for (let hops = 0; node && typeof node === 'object' && node.$ref; hops++) {
      if (hops > 16) throw new Error(`reference loop at ${obj.$ref}`);
      const target = pointerGet(this.doc, node.$ref);
      if (target === undefined) throw new Error(`unresolved reference ${node.$ref}`);
      node = target;
    }
    return node;
  }

  /* Every [method, template, operation] of the document. */
  operations() {
    const out = [];
    for (const { template, item } of this.routes) {
      for (const method of HTTP_METHODS) {
        if (item[method]) out.push({ method: method.toUpperCase(), template, operation: item[method] });
      }
    }
    return out;
  }

  /* {template, operation} for a concrete request path (no query); operation undefined when the
   * path is documented but not with this method; null when no path matches. HEAD finds the
   * GET operation. */
  findOperation(method, pathname) {
    for (const route of this.routes) {
      if (route.regex.test(pathname)) {
        // every GET route also serves HEAD (the same answer without its body)
        const m = method === 'HEAD' && !route.item.head ? 'get' : method.toLowerCase();
        return { template: route.template, operation: route.item[m] };
      }
    }
    return null;
  }

  /* The documented response for an answer, as {key, response} (key names it in coverage), or
   * null when the contract does not list this answer. The answers that do not depend on the
   * route are the document's shared responses: 404/400 for paths no route has (400: a path
   * the router cannot decode) and 405 for a documented path with another method. */
  responseFor(method, pathname, status) {
    const found = this.findOperation(method, pathname);
    const shared = (name) => ({
      key: `* ${status}`,
      response: this.resolve(this.doc.components.responses[name]),
    });
    if (found === null) {
      if (status === 404) return shared('NotFound');
      if (status === 400) return shared('BadRequest');
      return null;
    }
    if (found.operation === undefined) return status === 405 ? shared('MethodNotAllowed') : null;
    const resp = found.operation.responses[String(status)];
    if (resp === undefined) return null;
    return {
      key: `${method} ${found.template} ${status}`,
      operation: found.operation,
      template: found.template,
      response: this.resolve(resp),
    };
  }

  /* A compiled Ajv validator for a schema taken from the document. */
  validator(schema) {
    const key = JSON.stringify(schema);
    let fn = this.compiled.get(key);
    if (!fn) {
      fn = this.ajv.compile(rewriteRefs(schema));
      this.compiled.set(key, fn);
    }
    return fn;
  }

  /* null when value conforms to schema, else a readable list of the violations. */
  violations(schema, value) {
    const validate = this.validator(schema);
    if (validate(value)) return null;
    return validate.errors
      .map((e) => `${e.instancePath || '(root)'} ${e.message} ${JSON.stringify(e.params)}`)
      .join('\n');
  }

  /* The component schema `name` (for direct checks in tests). */
  schema(name) {
    return { $ref: `${SCHEMA_REF_PREFIX}${name}` };
  }
}
