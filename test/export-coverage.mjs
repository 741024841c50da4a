// After `npm test -- --coverage`: is every public export of `leasehold` and `leasehold/testing`
// executed by at least one test? Reads coverage/coverage-final.json and the sources, and lists every
// public function, class member (methods, getters, [Symbol.asyncDispose]) and interface member that
// no test ran, and every exported constant no test file names. Exits 1 when there is one.
//
//   npm test -- --coverage && node test/export-coverage.mjs      (or: npm run coverage)
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const coverageFile = join(root, 'coverage', 'coverage-final.json');
if (!existsSync(coverageFile)) {
  console.error('no coverage/coverage-final.json: run `npm test -- --coverage` first');
  process.exit(2);
}
const coverage = JSON.parse(readFileSync(coverageFile, 'utf8'));
const byFile = new Map(Object.entries(coverage).map(([file, data]) => [relative(root, file), data]));

/** Hit counts of the functions declared on each line of `file`. */
function hitsByLine(file) {
  const data = byFile.get(file);
  const hits = new Map();
  if (!data) return hits;
  for (const [id, fn] of Object.entries(data.fnMap)) {
    const line = fn.decl.start.line;
    hits.set(line, (hits.get(line) ?? 0) + data.f[id]);
  }
  return hits;
}

const source = (file) => readFileSync(join(root, file), 'utf8').split('\n');

/** `export { A, B, type C } from './x.js'` lines of an index: runtime names per module. */
function reexports(index) {
  const text = readFileSync(join(root, index), 'utf8');
  const dir = index.slice(0, index.lastIndexOf('/') + 1);
  const out = [];
  for (const m of text.matchAll(/export\s*\{([^}]*)\}\s*from\s*'\.\/([^']+)\.js'/g)) {
    const names = m[1].split(',').map((n) => n.trim()).filter((n) => n && !n.startsWith('type '));
    if (!/^export\s+type/.test(m[0])) out.push({ file: `${dir}${m[2]}.ts`, names });
  }
  return out;
}

const memberRe = /^ {2}(?:static\s+)?(?:async\s+)?(?:\*\s*)?(?:get\s+|set\s+)?([A-Za-z_]\w*|\[Symbol\.\w+\])\s*[(<]/;

/** Public members of `class name` in `lines`, with the line each is declared on (1-based). */
function classMembers(lines, name) {
  const start = lines.findIndex((l) => new RegExp(`^(export\\s+)?(abstract\\s+)?class\\s+${name}\\b`).test(l));
  if (start < 0) return undefined;
  const members = [];
  for (let i = start + 1; i < lines.length && !/^}/.test(lines[i]); i++) {
    const m = memberRe.exec(lines[i]);
    if (!m || /^\s*(private|protected)\b/.test(lines[i])) continue;
    // An overload signature has no body of its own: the implementation's line is the one that runs.
    if (/;\s*$/.test(lines[i])) continue;
    // A constructor marked @internal is not public API (handles are made by the primitives).
    if (m[1] === 'constructor' && lines.slice(Math.max(start, i - 3), i).some((l) => l.includes('@internal'))) continue;
    members.push({ member: m[1], line: i + 1 });
  }
  return members;
}

const missing = [];
const testFiles = [];
(function walk(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory() && !entry.name.startsWith('.')) walk(path);
    else if (/\.test\.ts$/.test(entry.name)) testFiles.push(readFileSync(join(root, path), 'utf8'));
  }
})('test');
(function walk(dir) {
  for (const entry of readdirSync(join(root, dir), { withFileTypes: true })) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory()) walk(path);
    else if (/\.test\.ts$/.test(entry.name)) testFiles.push(readFileSync(join(root, path), 'utf8'));
  }
})('src');

let checked = 0;
for (const index of ['src/index.ts', 'src/testing/index.ts']) {
  for (const { file, names } of reexports(index)) {
    const lines = source(file);
    const hits = hitsByLine(file);
    for (const name of names) {
      checked++;
      const fnLine = lines.findIndex((l) => new RegExp(`^export\\s+(async\\s+)?function\\s*\\*?\\s*${name}\\b`).test(l));
      const members = classMembers(lines, name);
      if (fnLine >= 0) {
        if (!(hits.get(fnLine + 1) > 0)) missing.push(`${file}: ${name}()`);
      } else if (members) {
        for (const { member, line } of members) if (!(hits.get(line) > 0)) missing.push(`${file}: ${name}.${member}`);
      } else if (!testFiles.some((t) => new RegExp(`\\b${name}\\b`).test(t))) {
        missing.push(`${file}: ${name} (named by no test)`);
      }
    }
  }
}

// Interfaces of leasehold/testing whose implementations are not exported: each method must have run
// in at least one implementation.
const interfaces = [
  { file: 'src/testing/cluster.ts', name: 'EtcdCluster', impls: [['src/testing/cluster.ts', 'ClusterBase'], ['src/testing/binary.ts', 'BinaryCluster'], ['src/testing/remote.ts', 'RemoteCluster']] },
  { file: 'src/testing/cluster.ts', name: 'EtcdMember', impls: [['src/testing/binary.ts', 'BinaryMember']] },
  { file: 'src/testing/proxy.ts', name: 'TcpProxy', impls: [['src/testing/proxy.ts', 'Proxy']] },
];
for (const { file, name, impls } of interfaces) {
  const lines = source(file);
  const start = lines.findIndex((l) => new RegExp(`^export\\s+interface\\s+${name}\\b`).test(l));
  for (let i = start + 1; i < lines.length && !/^}/.test(lines[i]); i++) {
    const m = /^ {2}(?:readonly\s+)?([A-Za-z_]\w*|\[Symbol\.\w+\])\??\s*\(/.exec(lines[i]);
    if (!m) continue;
    checked++;
    const ran = impls.some(([implFile, cls]) => {
      const hits = hitsByLine(implFile);
      return (classMembers(source(implFile), cls) ?? []).some((mem) => mem.member === m[1] && hits.get(mem.line) > 0);
    });
    if (!ran) missing.push(`${file}: ${name}.${m[1]} (no implementation ran)`);
  }
}

if (missing.length > 0) {
  console.log(`public API not executed by any test (${missing.length}):\n${missing.map((m) => `  ${m}`).join('\n')}`);
  process.exit(1);
}
console.log(`every public export (${checked} names and interface methods, with their public members) was executed by a test`);
