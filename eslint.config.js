// Lint: typescript-eslint's type-checked rules over the sources, tests, benchmarks and scripts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'build/', 'node_modules/', 'coverage/', '.tmp/'] },
  // What the framework fixtures' builds write (test/helpers/framework-fixture.ts, framework-build.ts); never tracked.
  { ignores: ['**/.next/', 'test/fixtures/frameworks/*/{build,dist*,.output*,.nuxt,.svelte-kit,.astro}/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // node:test's test()/describe() return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': ['error', {
        allowForKnownSafeCalls: [{ from: 'package', name: ['test', 'it', 'describe', 'suite'], package: 'node:test' }],
      }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-explicit-any': 'error',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      parserOptions: { project: false, projectService: false },
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly' },
    },
  },
  {
    // CommonJS fixtures (apps as their authors write them).
    files: ['**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      sourceType: 'commonjs',
      parserOptions: { project: false, projectService: false },
      globals: { process: 'readonly', console: 'readonly', setTimeout: 'readonly', require: 'readonly', module: 'writable' },
    },
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Framework fixtures: server code of full-stack apps, which uses the Fetch globals.
    files: ['test/fixtures/frameworks/**/*.js', 'test/fixtures/frameworks/**/*.mjs'],
    languageOptions: { globals: { URL: 'readonly', Response: 'readonly' } },
  },
);
