#!/usr/bin/env node
// Thin entry: the CLI lives in runtime/cli (compiled to dist/ by `npm install` / `npm run build`).
import { main } from '../dist/runtime/cli/main.js';
import { shutdownGpu } from '../dist/runtime/webgpu/device.js';

const code = await main(process.argv.slice(2));
await shutdownGpu().catch(() => {});
process.exit(code);
