/**
 * A model compiles to exactly the graph its code describes, or to nothing (issue: trace integrity). The build
 * function runs once per graph (train, eval): tensors kept between the runs are refused at the call that uses them;
 * an eval graph that is not the train graph's forward part is refused at its first differing node; tracing in the
 * sandbox is deterministic, so two compiles give byte-identical artifacts.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { frontEnd, loadModel, traceModel } from '../../dsl/frontend.js';
import { model, input, flatten, linear, relu, add } from '../../dsl/index.js';
import { checkModes, ModeMismatchError } from '../../passes/check-modes.js';
import { compileArtifact } from '../../runtime/cli/compile.js';
import { parseOptimizer } from '../../passes/optimizer.js';
import { Module } from '../../ir/graph.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-integrity-'));

function modelFile(name: string, top: string, body: string): string {
  const file = path.join(tmp, `${name}.ts`);
  fs.writeFileSync(file, `import { model, input, flatten, linear, relu, add, Tensor } from 'lpc/dsl';\n${top}\nexport default model('${name}', () => {\n${body}\n});\n`);
  return file;
}
function compile(file: string) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', 'compile', file, '-o', path.join(tmp, `${path.basename(file, '.ts')}.lpc`)], { encoding: 'utf8' });
  return { code: r.status, err: r.stderr.trim() };
}
function refused(file: string, pattern: RegExp): string {
  const r = compile(file);
  expect(r.code).toBe(1);
  expect(r.err.split('\n')).toHaveLength(1);
  expect(r.err).toMatch(pattern);
  expect(fs.existsSync(path.join(tmp, `${path.basename(file, '.ts')}.lpc`))).toBe(false);
  return r.err;
}

describe('tensors belong to one trace', () => {
  test("the issue's case: a closure over the first call's relu is refused at the add, naming both traces", () => {
    const file = modelFile('cache', 'let cached: Tensor | undefined;', [
      '  const l = linear(flatten(input([1, 4, 4])), 8);',
      '  cached ??= relu(l);',
      '  return linear(add(cached, l), 2);'].join('\n'));
    const err = refused(file, /add was given a tensor made by the 'train' trace of model 'cache' \(trace #\d+\) at .*cache\.ts:5:14, but this call is in the 'eval' trace of model 'cache'/);
    expect(err.startsWith(`lpc: ${file}:6:17: `)).toBe(true);
  });

  test('a module-level tensor and a foreign model are refused with their places', () => {
    // a DSL call at module level runs outside any trace
    refused(modelFile('toplevel', 'const x = input([1, 4, 4]);', '  return linear(flatten(x), 2);'), /toplevel\.ts:2:11: input\(\) was called outside a model trace/);
    // a tensor from another model's trace (a "layer reused across two models")
    let kept: ReturnType<typeof input> | undefined;
    const a = model('a', () => { kept = linear(flatten(input([1, 2, 2])), 3); return kept; });
    traceModel(a, 1);
    const b = model('b', () => { input([1, 2, 2]); return linear(kept!, 2); });
    expect(() => traceModel(b, 1)).toThrow(/^linear was given a tensor made by the 'eval' trace of model 'a' \(trace #\d+\), but this call is in the 'train' trace of model 'b'/);
    // returning a kept tensor as the logits
    let first: ReturnType<typeof input> | undefined;
    const c = model('c', () => { const l = linear(flatten(input([1, 2, 2])), 2); first ??= l; return first; });
    expect(() => traceModel(c, 1)).toThrow(/^model 'c' returned a tensor made by the 'train' trace of model 'c'/);
  });
});

describe('train and eval describe one model', () => {
  test('a counter in module state: refused at the first differing node with both source places', () => {
    const file = modelFile('counter', 'let calls = 0;', '  const h = linear(flatten(input([1, 4, 4])), calls++ === 0 ? 8 : 9);\n  return linear(relu(h), 2);');
    refused(file, /model 'counter': its eval graph is not its train graph's forward part \(another shape\): train has %\d+ = state \[8, 16\] at .*counter\.ts:4:13, eval has %\d+ = state \[9, 16\] at .*counter\.ts:4:13/);
  });

  test('Math.random outside the sandbox (in-process tracing) is caught by the check', () => {
    const def = loadModel(modelFile('rand', '', '  return linear(relu(linear(flatten(input([1, 4, 4])), 4 + Math.floor(Math.random() * 1e6))), 2);'));
    expect(() => checkModes(traceModel(def, 2))).toThrow(ModeMismatchError);
  });

  test('every model in models/ passes, dropout and batch norm included; any edit of its eval graph is refused', () => {
    for (const f of fs.readdirSync('models').filter((x) => x.endsWith('.ts'))) {
      const m = frontEnd(`models/${f}`, 2);
      expect(() => checkModes(m)).not.toThrow();
      const ev = m.graphs.find((g) => g.name === 'eval')!;
      const edits: ((m: Module) => void)[] = [
        (x) => { const n = x.graphs[1].nodes.find((k) => k.op === 'relu' || k.op === 'relu6' || k.op === 'gelu' || k.op === 'tanh')!; n.op = 'add'; },
        (x) => { const n = x.graphs[1].nodes.find((k) => k.op === 'state')!; n.attrs.init = 'zeros'; },
        (x) => { const n = x.graphs[1].nodes.find((k) => k.inputs.length === 1 && k.inputs[0] > 0)!; n.inputs = [n.inputs[0] - 1]; },
        (x) => { x.graphs[1].outputs.reverse(); },
      ];
      expect(ev.nodes.some((n) => n.op === 'relu' || n.op === 'relu6' || n.op === 'gelu' || n.op === 'tanh')).toBe(true); // an activation to edit (MobileNetV2 has only relu6)
      for (const edit of edits) {
        const copy = structuredClone(m);
        edit(copy);
        expect(() => checkModes(copy)).toThrow(ModeMismatchError);
      }
    }
  });
});

describe('deterministic tracing', () => {
  test('Math.random and the clock are constant in the sandbox: the traces agree and two compiles are identical', () => {
    const file = modelFile('clock', '', '  return linear(relu(linear(flatten(input([1, 4, 4])), 2 + Math.floor(Math.random() * 50) + (Date.now() % 7) + Math.floor(performance.now()))), 2);'
    ).replace(/$/, '');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace("import {", 'declare const performance: { now(): number };\nimport {'));
    expect(compile(file).code).toBe(0);
    const first = fs.readFileSync(path.join(tmp, 'clock.lpc', 'graph.lpir'), 'utf8');
    expect(compile(file).code).toBe(0);
    expect(fs.readFileSync(path.join(tmp, 'clock.lpc', 'graph.lpir'), 'utf8')).toBe(first);
  });

  test('every model in models/ compiles twice to byte-identical artifacts', () => {
    const optimizer = parseOptimizer('sgd(lr=0.05,momentum=0.9,wd=5e-4)');
    const files = (dir: string): Map<string, Buffer> => new Map(fs.readdirSync(dir, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile()).map((e) => { const p = path.join(e.parentPath, e.name); return [path.relative(dir, p), fs.readFileSync(p)]; }));
    for (const f of fs.readdirSync('models').filter((x) => x.endsWith('.ts'))) {
      const [a, b] = ['a', 'b'].map((k) => { const out = path.join(tmp, `${k}-${f}.lpc`); compileArtifact(`models/${f}`, out, { batch: 2, optimizer, modelOptions: {} }); return files(out); });
      expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
      for (const [name, bytes] of a) expect({ f, name, same: bytes.equals(b.get(name)!) }).toEqual({ f, name, same: true });
    }
  }, 600_000); // the zoo's deep nets (ResNet-164, DenseNet-161: 4,000+ nodes) take seconds each
});
