#!/usr/bin/env node
// Thin entry: the CLI lives in runtime/cli (compiled to dist/ by `npm install` / `npm run build`).
import { main } from '../dist/runtime/cli/main.js';

process.exit(await main(process.argv.slice(2)));
