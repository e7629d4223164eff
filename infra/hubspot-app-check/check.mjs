// Parses our HubSpot project (infra/hubspot-app) with @hubspot/project-parsing-lib,
// the parser HubSpot's CLI uses, and fails on any error. With validation skipped
// (full validation needs a HubSpot account) the parser drops an unparseable file
// silently, so this also fails when a file was skipped or when a `*-hsmeta.json`
// file of the project is missing from the parsed nodes.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { translate } from '@hubspot/project-parsing-lib/translate';

const projectDir = resolve(process.argv[2] ?? '../hubspot-app');
const project = JSON.parse(readFileSync(join(projectDir, 'hsproject.json'), 'utf8'));
const srcDir = join(projectDir, project.srcDir);

function hsmetaFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'node_modules') return [];
    if (statSync(path).isDirectory()) return hsmetaFiles(path);
    return name.endsWith('-hsmeta.json') ? [path] : [];
  });
}

const problems = [];
let result;
try {
  result = await translate(
    { projectSourceDir: srcDir, platformVersion: project.platformVersion },
    { skipValidation: true },
  );
} catch (error) {
  console.error(`HubSpot's parser refused the project: ${error?.message ?? error}`);
  for (const e of error?.errors ?? []) console.error(`  ${JSON.stringify(e)}`);
  process.exit(1);
}
for (const skipped of result.skippedHsMetaFiles) {
  problems.push(`skipped by the parser: ${skipped}`);
}
const nodes = Object.values(result.intermediateRepresentation.intermediateNodesIndexedByUid);
const parsed = new Set(nodes.map((n) => resolve(srcDir, n.metaFilePath)));
for (const file of hsmetaFiles(srcDir)) {
  const seen = [...parsed].some((p) => p === file || p.endsWith(relative(srcDir, file)));
  if (!seen) problems.push(`not among the parsed nodes: ${relative(projectDir, file)}`);
}
if (problems.length > 0) {
  for (const p of problems) console.error(p);
  process.exit(1);
}
console.log(
  `HubSpot's project parser: ${nodes.length} components (${nodes
    .map((n) => `${n.componentType} ${n.uid}`)
    .join(', ')}), no file skipped`,
);
