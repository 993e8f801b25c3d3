// Judges JSON instances with ajv's Ajv2020 in strict mode, with ajv-formats.
// stdin: {"schemas": [schema, ...], "cases": [[schemaIndex, instance], ...]}
// stdout: {"errors": [null or the compile error, ...], "valid": [true, false, null, ...]}
// (null: the schema did not compile).
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { schemas, cases } = JSON.parse(Buffer.concat(chunks).toString("utf8"));

const ajv = new Ajv2020({ strict: true, allErrors: false });
addFormats(ajv);
const errors = [];
const compiled = schemas.map((schema) => {
  try {
    const validate = ajv.compile(schema);
    errors.push(null);
    return validate;
  } catch (error) {
    errors.push(String(error.message || error));
    return null;
  }
});
const valid = cases.map(([index, instance]) => (compiled[index] ? compiled[index](instance) : null));
process.stdout.write(JSON.stringify({ errors, valid }));
