// Lint for mistakes the type checker lets through, chiefly async ones: a promise nobody awaits or handles, a
// promise passed where a plain callback is expected, an `await` on something that is not a promise. No style
// rules: formatting is not linted. Type-aware: typescript-eslint reads tsconfig.json through its project
// service. The same rules for lib/, bin/, bench/ and tests/; tests also get the few vitest rules that catch an
// assertion that cannot fail.
import vitest from '@vitest/eslint-plugin';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // Everything but lib/, bin/, bench/, tests/ and vitest.config.ts (dist/ and .build/ are output).
  {
    ignores: ['**/*', '!lib/', '!lib/**', '!bin/', '!bin/**', '!bench/', '!bench/**', '!tests/', '!tests/**', '!vitest.config.ts'],
  },
  {
    files: ['lib/**/*.ts', 'bin/**/*.ts', 'bench/**/*.ts', 'tests/**/*.ts', 'vitest.config.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise must be awaited, returned, or handled. `void` marks a deliberate fire-and-forget; give it a
      // comment saying why its rejection cannot be lost (it never rejects, or it is caught and logged).
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function where a void callback is expected (event listeners, forEach, timers) loses its rejection.
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // `return promise` inside try/catch skips the catch; `return await` there keeps it.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      'no-async-promise-executor': 'error',
      // Errors are DanError classes or Error, never strings (STYLE.md, errors).
      '@typescript-eslint/only-throw-error': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
        },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['tests/**/*.ts'],
    plugins: { vitest },
    rules: {
      // `.resolves`/`.rejects` must be awaited or returned: a bare one is checked after the test has passed,
      // and `void` silences no-floating-promises but not this. A matcher must be called, not just named.
      // maxArgs 2: vitest's expect(value, message).
      'vitest/valid-expect': ['error', { maxArgs: 2 }],
      // An expect inside a promise callback must be awaited or returned, or it runs after the test.
      'vitest/valid-expect-in-promise': 'error',
      // A test with no assertion cannot fail. expectBadInput (tests/helpers) asserts through the test's expect, and so
      // does expectRefused (the API's bad-input check, tests/integration/web-api.test.ts).
      'vitest/expect-expect': ['error', { assertFunctionNames: ['expect', 'expectBadInput', 'expectRefused'] }],
    },
  },
);
