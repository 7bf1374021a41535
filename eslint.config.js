// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

// The dependency rule of src/ (README, Design): a folder imports only folders to its left, never one
// to its right or beside it; store, config and metrics do not import each other; the top-level files
// (app.ts, lifecycle.ts, system-time.ts, cli.ts, index.ts) compose them and no folder imports them.
//   core  <-  store, config, metrics  <-  scheduler  <-  upstream  <-  forward  <-  http  <-  app.ts, lifecycle.ts  <-  cli.ts
const layers = [['store', 'config', 'metrics'], ['scheduler'], ['upstream'], ['forward'], ['http']];
const layerRules = layers.flatMap((layer, rank) =>
  layer.flatMap((folder) => {
    const forbidden = layers
      .slice(rank)
      .flat()
      .filter((other) => other !== folder);
    // A file in src/<folder>/ reaches src/ with one '../', one in src/<folder>/<sub>/ with two.
    return ['', '*/'].map((sub, depth) => {
      const up = '\\.\\./'.repeat(depth + 1);
      return {
        files: [`src/${folder}/${sub}*.ts`],
        rules: {
          'no-restricted-imports': [
            'error',
            {
              patterns: [
                { regex: `^${up}(${forbidden.join('|')})/`, message: `src/${folder} may import only the folders to its left (README, Design).` },
                { regex: `^${up}[^/]+\\.js$`, message: 'Only the composition (app.ts, lifecycle.ts, cli.ts) imports the top-level files.' },
              ],
            },
          ],
        },
      };
    });
  }),
);

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'load/results/', 'node_modules/', 'scratch/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
  {
    // The pure core imports nothing from Node or npm (see README, Design).
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [{ regex: '^(?!\\./)', message: 'src/core is pure: it imports only its own modules.' }] }],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'setImmediate', 'process', 'performance'],
      'no-restricted-properties': ['error', { object: 'Date', property: 'now', message: 'src/core takes the time as an argument.' }],
      'no-restricted-syntax': [
        'error',
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'src/core takes the time as an argument.' },
      ],
    },
  },
  ...layerRules,
);
