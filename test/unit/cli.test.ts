/** The CLI's error paths: one clear message, a non-zero exit, nothing half-written. Runs the built bin/lpc.js. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { optionsHash } from '../../runtime/artifact.js';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lpc-cli-'));
function lpc(args: string[], input?: string) {
  const r = spawnSync(process.execPath, ['bin/lpc.js', ...args], { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('lpc CLI', () => {
  const art = path.join(tmp, 'lenet5.lpc');
  beforeAll(() => {
    const r = lpc(['compile', 'models/lenet5.ts', '-o', art, '--batch', '8']);
    expect(r.err).toContain('compiled models/lenet5.ts');
    expect(r.code).toBe(0);
  });

  test('the artifact holds manifest, IR, kernels and plan', () => {
    for (const f of ['manifest.json', 'graph.lpir', 'plan.json']) expect(fs.existsSync(path.join(art, f))).toBe(true);
    expect(fs.readdirSync(path.join(art, 'kernels')).some((f) => f.endsWith('.wgsl'))).toBe(true);
    expect(fs.readFileSync(path.join(art, 'graph.lpir'), 'utf8').startsWith('lpc.ir 1\n')).toBe(true);
  });

  test('--help tells the truth about every command', () => {
    const top = lpc(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['compile', 'run', 'inspect', 'quant']) expect(top.out).toContain(c);
    expect(lpc(['run', '--help']).out).toContain('--backend B');
  });

  test('an unknown flag', () => {
    const r = lpc(['run', art, '--epoch', '3']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe("lpc: unknown option '--epoch' for 'lpc run'; see 'lpc run --help'");
  });

  test('--precision: placed roles are in the IR, the manifest keeps the canonical spec, errors name line:col', () => {
    const out = path.join(tmp, 'q.lpc');
    const ok = lpc(['compile', 'models/lenet5.ts', '-o', out, '--batch', '4', '--precision', 'A=e5m2  G=bfp<8>:stochastic']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8')).options.precision).toBe('A=float<5,2> G=bfp<8,tensor>:stochastic');
    expect(fs.readFileSync(path.join(out, 'graph.lpir'), 'utf8')).toMatch(/float<5,2>/);
    const bad = path.join(tmp, 'badq.lpc');
    const r = lpc(['compile', 'models/lenet5.ts', '-o', bad, '--precision', 'W=bpf<8>']);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe("lpc: --precision:1:3: unknown format 'bpf'; expected fixed, bfp, float, minmax, mx or an alias (bf16, fp16, e4m3, e5m2)");
    expect(fs.existsSync(bad)).toBe(false);
    const file = path.join(tmp, 'spec.txt');
    fs.writeFileSync(file, '# SWALP-ish\nW=bfp<8,axis=0>\nA=float<9,2>\n');
    const f = lpc(['compile', 'models/lenet5.ts', '-o', bad, '--precision-file', file]);
    expect(f.code).toBe(2);
    expect(f.err.trim()).toBe(`lpc: ${file}:3:9: float: exp must satisfy 1 <= exp <= 8 (got 9)`);
  });

  test('a type error stops compilation and leaves no artifact', () => {
    const out = path.join(tmp, 'bad.lpc');
    const r = lpc(['compile', 'test/fixtures/type_error.ts', '-o', out]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('test/fixtures/type_error.ts:5:25: error TS2322');
    expect(fs.existsSync(out)).toBe(false);
    expect(fs.readdirSync(tmp).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });

  test('a shape error names the line', () => {
    const r = lpc(['compile', 'test/fixtures/shape_error.ts', '-o', path.join(tmp, 'bad2.lpc')]);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe('lpc: test/fixtures/shape_error.ts:6:10: conv2d expects 4-D input [N, C, H, W], got [64, 3456]');
  });

  test('a missing artifact', () => {
    const r = lpc(['run', path.join(tmp, 'nope.lpc')]);
    expect(r.code).toBe(1);
    expect(r.err).toContain('nope.lpc: no such artifact');
  });

  test('an edited or truncated artifact is refused', () => {
    const copy = path.join(tmp, 'edited.lpc');
    fs.cpSync(art, copy, { recursive: true });
    const g = path.join(copy, 'graph.lpir');
    fs.writeFileSync(g, fs.readFileSync(g, 'utf8').slice(0, 500));
    const r = lpc(['run', copy, '--backend', 'cpu']);
    expect(r.code).toBe(1);
    expect(r.err.trim()).toBe(`lpc: ${copy}: graph.lpir was modified or truncated (content hash mismatch); recompile the model`);
    fs.writeFileSync(path.join(copy, 'manifest.json'), '{"format": "lpc-art');
    expect(lpc(['run', copy]).err).toContain('manifest.json is corrupt');
  });

  test('an unknown dataset', () => {
    const r = lpc(['run', art, '--data', 'imagenet', '--backend', 'cpu']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/imagenet/);
    expect(r.err.split('\n').filter(Boolean)).toHaveLength(1);
  });

  test('lpc quant (cpu) on a few values, numbers and hex', () => {
    const r = lpc(['quant', '--format', 'fixed<4,2>'], '[0.3, 0.375, -5, 1.1]');
    expect(r.code).toBe(0);
    // step 0.25, range [−2, 1.75]; 0.375 is a tie → even (0.5)
    expect(JSON.parse(r.out)).toEqual([0.25, 0.5, -2, 1]);
    const h = lpc(['quant', '--format', 'e5m2', '--hex'], '["3f800001"]');
    expect(JSON.parse(h.out)).toEqual(['3f800000']);
    const bad = lpc(['quant', '--format', 'bpf<8>'], '[1]');
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown format');
  });

  test('inspect summarises dispatches', () => {
    const r = lpc(['inspect', art]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/graph train: \d+ dispatches per step/);
    const j = JSON.parse(lpc(['inspect', art, '--json', '--ir']).out);
    expect(j.ir).toBe(fs.readFileSync(path.join(art, 'graph.lpir'), 'utf8'));
  });

  test('help and version', () => {
    const h = lpc(['help', 'plot']);
    expect(h.code).toBe(0);
    expect(h.out).toMatch(/^usage: lpc plot .*\n[^]*-o, --out FILE/);
    const unknown = lpc(['help', 'nosuch']);
    expect([unknown.code, unknown.err.trim()]).toEqual([2, "lpc: unknown command 'nosuch'; commands are compile, run, eval, inspect, mem, tune, quant, schedule, plot, sweep, worker, peppp"]);
    const v = lpc(['--version']);
    expect(v.code).toBe(0);
    expect(v.out.trim()).toBe(`lpc ${JSON.parse(fs.readFileSync('package.json', 'utf8')).version}`);
  });
});

/** Bad input found by an audit of every command: each is one line naming its place, exit 2 for usage, nothing lost. */
describe('lpc CLI: bad input names its place and loses nothing', () => {
  const art = path.join(tmp, 'audit.lpc');
  const run = ['run', art, '--backend', 'cpu', '--data', 'synthetic', '--epochs', '1', '--max-steps', '1'];
  const oneLine = (r: { err: string }) => r.err.trim();
  beforeAll(() => { expect(lpc(['compile', 'models/lenet5.ts', '-o', art, '--batch', '2']).code).toBe(0); });

  test('a value flag does not take the next flag as its value; integers are plain decimal digits', () => {
    const r = lpc(['compile', 'models/lenet5.ts', '-o', '--batch', '8']);
    expect([r.code, oneLine(r)]).toEqual([2, 'lpc: option --out needs a value (DIR)']);
    expect(fs.existsSync('--batch')).toBe(false);
    for (const v of ['1e3', '0x10', ' 7', '1.0']) {
      const b = lpc(['compile', 'models/lenet5.ts', '-o', path.join(tmp, 'n.lpc'), '--batch', v]);
      expect([b.code, oneLine(b)]).toEqual([2, `lpc: --batch must be an integer ≥ 1, got '${v}'`]);
    }
  });

  test('outputs are checked before training and never overwrite an input', () => {
    const missing = lpc([...run, '--metrics', path.join(tmp, 'nodir', 'm.jsonl')]);
    expect([missing.code, oneLine(missing)]).toEqual([2, `lpc: --metrics ${path.join(tmp, 'nodir', 'm.jsonl')}: directory ${path.join(tmp, 'nodir')} does not exist`]);
    const manifest = path.join(art, 'manifest.json');
    const before = fs.readFileSync(manifest);
    const into = lpc([...run, '--metrics', manifest]);
    expect([into.code, oneLine(into)]).toEqual([2, `lpc: --metrics ${manifest} is inside ${art}; refusing to write there`]);
    // through a symlink to the artifact too
    const link = path.join(tmp, 'audit-link.lpc');
    fs.symlinkSync(art, link);
    const viaLink = lpc(['run', link, ...run.slice(2), '--metrics', manifest]);
    expect([viaLink.code, oneLine(viaLink)]).toEqual([2, `lpc: --metrics ${manifest} is inside ${link}; refusing to write there`]);
    expect(fs.readFileSync(manifest).equals(before)).toBe(true);

    const m = path.join(tmp, 'audit.jsonl');
    expect(lpc([...run, '--metrics', m]).code).toBe(0);
    const jsonl = fs.readFileSync(m);
    const self = lpc(['plot', m, '-o', m]);
    expect([self.code, oneLine(self)]).toEqual([2, `lpc: -o ${m} is the input file too; refusing to overwrite it`]);
    expect(fs.readFileSync(m).equals(jsonl)).toBe(true);
  });

  test('--checkpoint refuses a directory lpc did not write, and another run it would replace', () => {
    const other = path.join(tmp, 'mine');
    fs.mkdirSync(other);
    fs.writeFileSync(path.join(other, 'state-notes.safetensors'), 'mine');
    fs.writeFileSync(path.join(other, 'notes.txt'), 'kept');
    const r = lpc([...run, '--checkpoint', other]);
    expect([r.code, oneLine(r)]).toEqual([2, `lpc: --checkpoint ${other}: holds state-notes.safetensors, which checkpointing would delete; refusing to write there (choose another directory)`]);
    expect(fs.readFileSync(path.join(other, 'state-notes.safetensors'), 'utf8')).toBe('mine');
    // files checkpointing leaves alone may be there, and a new checkpoint folder may also hold the metrics file
    fs.rmSync(path.join(other, 'state-notes.safetensors'));
    expect(lpc([...run, '--checkpoint', other]).code).toBe(0);
    expect(fs.readFileSync(path.join(other, 'notes.txt'), 'utf8')).toBe('kept');
    const fresh = path.join(tmp, 'fresh-ck');
    expect(lpc([...run, '--checkpoint', fresh, '--metrics', path.join(fresh, 'm.jsonl')]).code).toBe(0);
    expect(fs.readdirSync(fresh).sort()).toEqual(['checkpoint.json', 'm.jsonl', 'state-00000001-e1.safetensors']);

    const ck = path.join(tmp, 'ck');
    expect(lpc(['run', art, '--backend', 'cpu', '--data', 'synthetic', '--epochs', '2', '--max-steps', '2', '--checkpoint', ck, '--checkpoint-every', '1']).code).toBe(0);
    const side = path.join(ck, 'checkpoint.json');
    const s = JSON.parse(fs.readFileSync(side, 'utf8'));
    s.position = { ...s.position, epoch: 2, stepsDone: 1, epochDone: false };
    fs.writeFileSync(side, JSON.stringify(s));
    const again = lpc([...run, '--checkpoint', ck]);
    expect([again.code, oneLine(again)]).toEqual([2, `lpc: --checkpoint ${ck}: holds an unfinished run (epoch 2 of 2, step 1); continue it with --resume ${ck}, or choose another directory`]);
    expect(JSON.parse(fs.readFileSync(side, 'utf8'))).toEqual(s);

    // a value the checkpoint holds is blamed on the checkpoint, not on a flag nobody typed
    fs.writeFileSync(side, JSON.stringify({ ...s, config: { ...s.config, epochs: 0 } }));
    const cfg = lpc(['run', art, '--backend', 'cpu', '--resume', ck]);
    expect([cfg.code, oneLine(cfg)]).toEqual([1, `lpc: checkpoint ${side}: config.epochs: must be an integer ≥ 1, got '0'`]);
  });

  test("errors thrown by a model's own code name file:line:col", () => {
    fs.mkdirSync(path.join(tmp, 'with space'));
    const write = (name: string, body: string) => {
      const f = path.join(tmp, 'with space', name);
      fs.writeFileSync(f, `import { model, input, linear, flatten } from 'lpc/dsl';\n${body}\n`);
      return f;
    };
    const thrown = write('throws.ts', "export default model('t', () => {\n  if (1 > 0) throw new Error('boom');\n  return linear(flatten(input([1, 2, 2])), 3);\n});");
    const undef = write('undef.ts', "const cfg: any = undefined;\nconst n = cfg.n;\nexport default model('t', () => linear(flatten(input([1, 2, 2])), n));");
    // columns: where V8 reports them, `new Error(…)` and the property read
    const col = (f: string, line: number, what: string) => fs.readFileSync(f, 'utf8').split('\n')[line - 1].indexOf(what) + 1;
    const cases = [
      [thrown, `${thrown}:3:${col(thrown, 3, 'new Error')}: boom`],
      [undef, `${undef}:3:${col(undef, 3, 'cfg.n') + 4}: Cannot read properties of undefined (reading 'n')`],
    ];
    for (const [f, want] of cases) {
      const r = lpc(['compile', f, '-o', path.join(tmp, 'm.lpc')]);
      expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${want}`]);
    }
    const dir = lpc(['compile', tmp]);
    expect(oneLine(dir)).toBe(`lpc: ${tmp}: is a directory, not a model file`);
  });

  test('a per-axis format on a tensor without that axis names the model line, the role and the shape', () => {
    const r = lpc(['compile', 'models/lenet5.ts', '-o', path.join(tmp, 'ax.lpc'), '--precision', 'W=bfp<8,axis=1>']);
    // the first conv2d call: its bias [6] is the first weight without an axis 1
    const lines = fs.readFileSync('models/lenet5.ts', 'utf8').split('\n');
    const line = lines.findIndex((l) => l.includes('conv2d(x')) + 1;
    const at = `models/lenet5.ts:${line}:${lines[line - 1].indexOf('conv2d(x') + 1}`;
    expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${at}: precision W=bfp<8,axis=1>: axis 1 does not exist in a tensor of shape [6]`]);
  });

  test('a syntax error in a precision spec is one line, not the parser’s follow-on errors', () => {
    const r = lpc(['compile', 'models/lenet5.ts', '--precision', 'W=bfp<8,axis=abc>']);
    expect([r.code, oneLine(r)]).toEqual([2, "lpc: --precision:1:9: bfp: expected 'tensor' or 'axis=k', got 'axis=abc'"]);
  });

  test('usage errors exit 2: optimizer, pass name, artifact flags for tune', () => {
    expect(lpc(['compile', 'models/lenet5.ts', '--optimizer', 'rmsprop']).code).toBe(2);
    expect(lpc(['compile', 'models/lenet5.ts', '--optimizer', 'adam(eps=0)']).code).toBe(2);
    expect(lpc(['compile', 'models/lenet5.ts', '--print-after', 'nosuch']).code).toBe(2);
    const t = lpc(['tune', art, '--classes', '5']);
    expect([t.code, oneLine(t)]).toEqual([2, 'lpc: --classes applies to a model file; an artifact was compiled with its own']);
  });

  test('compile -o never replaces a folder holding files lpc did not write (a manifest.json alone does not make it an artifact)', () => {
    const d = path.join(tmp, 'foreign.lpc');
    fs.cpSync(art, d, { recursive: true });
    fs.writeFileSync(path.join(d, 'notes.txt'), 'mine');
    const r = lpc(['compile', 'models/lenet5.ts', '--batch', '2', '-o', d]);
    expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${d}: holds notes.txt, which lpc does not write into an artifact; refusing to replace it (choose another directory)`]);
    expect(fs.readFileSync(path.join(d, 'notes.txt'), 'utf8')).toBe('mine');
    fs.rmSync(path.join(d, 'notes.txt'));
    fs.writeFileSync(path.join(d, 'kernels', 'k.txt'), 'mine');
    expect(oneLine(lpc(['compile', 'models/lenet5.ts', '--batch', '2', '-o', d]))).toBe(`lpc: ${d}: holds kernels/k.txt, which lpc does not write into an artifact; refusing to replace it (choose another directory)`);
    fs.rmSync(path.join(d, 'kernels', 'k.txt'));
    expect(lpc(['compile', 'models/lenet5.ts', '--batch', '2', '-o', d]).code).toBe(0); // its own artifact: replaced
  });

  test('files an artifact names must be regular files: a symlink to a device or a FIFO is refused, never read', () => {
    const d = path.join(tmp, 'hostile.lpc');
    fs.cpSync(art, d, { recursive: true });
    fs.rmSync(path.join(d, 'graph.lpir'));
    fs.symlinkSync('/dev/zero', path.join(d, 'graph.lpir'));
    const r = lpc(['inspect', d]);
    expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${d}: graph.lpir is a symbolic link, not a regular file`]);
    fs.rmSync(path.join(d, 'graph.lpir'));
    expect(spawnSync('mkfifo', [path.join(d, 'graph.lpir')]).status).toBe(0);
    expect(oneLine(lpc(['inspect', d]))).toBe(`lpc: ${d}: graph.lpir is not a regular file`);
  });

  test('compile -o into a path that cannot be made names that path, not a temporary one', () => {
    const f = path.join(tmp, 'plainfile');
    fs.writeFileSync(f, '');
    const r = lpc(['compile', 'models/lenet5.ts', '-o', path.join(f, 'x.lpc')]);
    expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${path.join(f, 'x.lpc')}: cannot write the artifact (ENOTDIR: not a directory)`]);
  });

  test("the manifest's compile options are covered by options_sha256, and checked against the IR", () => {
    const copy = path.join(tmp, 'opts.lpc');
    fs.cpSync(art, copy, { recursive: true });
    const mf = path.join(copy, 'manifest.json');
    const m = JSON.parse(fs.readFileSync(mf, 'utf8'));
    // an edited option that changes training (a valid value too) is found at load, in one line
    for (const options of [
      { ...m.options, batch: 8 }, { ...m.options, optimizer: { ...m.options.optimizer, lr: 0.5 } }, { ...m.options, precision: 'A=e5m2' },
    ]) {
      fs.writeFileSync(mf, JSON.stringify({ ...m, options }));
      const r = lpc(['run', copy, ...run.slice(2)]);
      expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${copy}: manifest.json: the compile options were edited (they do not match options_sha256); recompile the model with the options you want`]);
    }
    // the hash rewritten with them: the options are still checked against the IR
    for (const [k, v, msg] of [
      ['batch', 8, "options.batch 8 disagrees with the graph's batch 2"],
      ['optimizer', { kind: 'sgd', lr: 'abc', momentum: 0.9, wd: 0 }, 'options.optimizer {"kind":"sgd","lr":"abc","momentum":0.9,"wd":0}: need lr > 0, 0 ≤ momentum < 1, wd ≥ 0 (got lr=abc, momentum=0.9, wd=0)'],
    ] as const) {
      const options = { ...m.options, [k]: v };
      fs.writeFileSync(mf, JSON.stringify({ ...m, options, options_sha256: optionsHash(options) }));
      const r = lpc(['run', copy, ...run.slice(2)]);
      expect([r.code, oneLine(r)]).toEqual([1, `lpc: ${copy}: manifest.json: ${msg}; recompile the model`]);
    }
    // an artifact of the previous format (epilogues as attributes): refused with a recompile message
    fs.writeFileSync(mf, JSON.stringify({ ...m, version: 3 }));
    const old = lpc(['run', copy, ...run.slice(2)]);
    expect([old.code, oneLine(old)]).toEqual([1, `lpc: ${copy}: artifact version 3 is not supported (this lpc reads version 4); recompile it`]);
  });
});
