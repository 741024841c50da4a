// Lint catches what a type checker does not: in a lock library a forgotten `await` is a safety bug,
// so floating and misused promises are errors. It also holds the layers (docs/design-notes.md,
// "Layers the linter holds"): arrows point down only, no import cycles, only the adapters know a wire
// library, and files and functions stay small enough to read.
import importX from 'eslint-plugin-import-x';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import tseslint from 'typescript-eslint';

/** The bottom layer: imported by every layer, imports nothing of ours. */
const core = ['src/errors.ts'];
/** The public API and the primitives: everything in src/ that is not in a layer folder. */
const top = ['src/*.ts', 'src/cli/**'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.scratch/**', 'test/.doc-examples/**', '.stryker-tmp/**', 'reports/**'] },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.base],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/resolver-next': [createTypeScriptImportResolver({ project: 'tsconfig.json' })],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/extensions': ['.ts', '.js'],
    },
    rules: {
      'import-x/no-cycle': ['error', { ignoreExternal: true }],
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: 'src/transport',
              from: 'src',
              except: ['./transport', './errors.ts'],
              message: 'transport/ is the bottom layer above errors.ts: it imports nothing of the engine, the primitives or the CLI',
            },
            {
              target: 'src/engine',
              from: 'src',
              except: ['./engine', './transport', ...core.map((f) => `./${f.replace('src/', '')}`)],
              message: 'engine/ never imports the primitives, the public API or the CLI',
            },
            {
              target: 'src/engine',
              from: ['src/transport/etcd3', 'src/transport/h2', 'src/transport/codec'],
              message: 'engine/ talks to etcd through the port (transport/port.ts, etcd.ts, select.ts), never through an adapter',
            },
            {
              target: 'src/testing',
              from: 'src',
              except: ['./testing'],
              message: 'testing/ imports nothing from the library (it must work when the library is broken)',
            },
            {
              target: [...top, 'src/engine/**'],
              from: ['src/transport/h2', 'src/transport/codec'],
              message: 'only transport/select.ts composes the h2 adapter',
            },
          ],
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'node:http2', message: 'only the h2 adapter (src/transport/h2/) speaks HTTP/2' },
            { name: 'http2', message: 'only the h2 adapter (src/transport/h2/) speaks HTTP/2' },
          ],
        },
      ],
      'max-lines': ['error', { max: 250, skipBlankLines: true, skipComments: true }],
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    // etcd3 is known to the etcd3 adapter, the composition point, the public API (which takes the
    // user's client and answers guarded commits in etcd3's shape), the CLI and testing/ (which make
    // clients) — never to the engine or the rest of the transport.
    files: ['src/engine/**/*.ts', 'src/transport/**/*.ts'],
    ignores: ['src/transport/etcd3/**', 'src/transport/select.ts', 'src/**/*.test.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [
            { name: 'etcd3', message: 'only the etcd3 adapter (src/transport/etcd3/) and the public API know etcd3; use the port (transport/port.ts, messages.ts)' },
            { name: 'node:http2', message: 'only the h2 adapter (src/transport/h2/) speaks HTTP/2' },
            { name: 'http2', message: 'only the h2 adapter (src/transport/h2/) speaks HTTP/2' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/transport/h2/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: [{ name: 'etcd3', message: 'the h2 adapter knows the port, not etcd3' }] }],
    },
  },
  {
    // The engine is exempt from the file length limit: its protocols (the queue, the rounds, the
    // observers) read best whole, one file each, with the argument for their safety beside the code.
    // Generated code and tests are exempt from both limits.
    files: ['src/engine/**/*.ts', 'src/transport/codec/**', 'src/**/*.test.ts'],
    rules: { 'max-lines': 'off' },
  },
  {
    files: ['src/transport/codec/**', 'src/**/*.test.ts'],
    rules: { 'max-lines-per-function': 'off' },
  },
);
