// Writes build/bundle.json: Cycle's bundle with its discriminator mappings dropped. They name
// the upstream yaml files (`advanced/IntegrationAdvancedOptionBoolean.yml`), which the bundle
// does not carry, and openapi-typescript resolves them as references; the oneOf they sit in
// is unchanged, so the types and the validation are the same without them.
import fs from "node:fs";

const bundle = JSON.parse(fs.readFileSync(new URL("./container-backups.bundle.json", import.meta.url)));
let dropped = 0;
(function walk(node) {
  if (Array.isArray(node)) return node.forEach(walk);
  if (!node || typeof node !== "object") return;
  if (node.discriminator && node.discriminator.mapping) {
    delete node.discriminator.mapping;
    dropped++;
  }
  Object.values(node).forEach(walk);
})(bundle);
fs.mkdirSync(new URL("./build/", import.meta.url), { recursive: true });
fs.writeFileSync(new URL("./build/bundle.json", import.meta.url), JSON.stringify(bundle));
console.log(`build/bundle.json: ${dropped} discriminator mappings dropped`);
