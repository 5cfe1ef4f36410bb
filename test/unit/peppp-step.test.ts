/**
 * PEPPP's training step against the real QPyTorch + PyTorch (test/fixtures/golden/peppp_step.json): explicit
 * quantizer sites with named classes (high on the input and logits, low at seven places), loss × 1000 and OptimLP's
 * grad_scaling = 1/1000 with W/G low and M/ACC high. On the CPU interpreter: the logits and every quantized weight
 * gradient of both steps bit for bit, the raw gradients to f32 summation noise, and every parameter, accumulator and
 * momentum buffer after each step bit for bit — unfused (every quantizer a node) and fused.
 */
import { runGraph } from '../../runtime/cpu/interpreter.js';
import { CpuBackend } from '../../runtime/cpu/backend.js';
import { printModule } from '../../ir/print.js';
import { G, PARAMS, compileNet, expectStateAfter, feeds, goldenHex, hex, initialState } from './peppp-golden.js';
import { fromHex, relErr } from './helpers.js';

describe('peppp_step.json: two OptimLP steps of a PEPPP-style network', () => {
  test('--print-after quantize shows the explicit sites with their classes', () => {
    const text = printModule(compileNet());
    expect(text).toContain('role="site:high/high"');
    expect(text).toContain('role="site:low/low"');
  });

  test('CPU interpreter, unfused: logits, quantized gradients and the optimizer state, both steps', () => {
    const m = compileNet(false);
    const train = m.graphs.find((g) => g.name === 'train')!;
    // the optimizer pass places one G quantizer per parameter, in the parameters' graph order; its input is the
    // unscaled gradient g·float32(1/1000) and that one's input the raw (scaled) gradient
    const params = train.nodes.filter((n) => n.op === 'state' && n.attrs.kind === 'param').map((n) => n.attrs.name as string);
    const gq = train.nodes.filter((n) => n.op === 'quantize' && n.attrs.role === 'G');
    expect(gq.length).toBe(params.length);
    expect([...params].sort()).toEqual([...PARAMS].sort());
    const logitsQ = train.nodes.find((n) => n.op === 'softmax_xent')!.inputs[0];
    let st = initialState(m);
    for (let k = 0; k < 2; k++) {
      const s = G.steps[k];
      const r = runGraph(train, feeds(), st);
      expect(relErr(r.outputs.loss, fromHex(s.loss))).toBeLessThan(1e-6);
      expect(hex(r.values[logitsQ] as Float32Array)).toEqual(goldenHex(s.logits));
      gq.forEach((q, i) => {
        const p = params[i], unscaled = train.nodes[q.inputs[0]];
        expect(unscaled.op).toBe('scale');
        expect(relErr(r.values[unscaled.inputs[0]] as Float32Array, fromHex(s.grad_raw[p]))).toBeLessThan(1e-5);
        expect([p, hex(r.values[q.id] as Float32Array)]).toEqual([p, goldenHex(s.grad_quantized[p])]);
      });
      st = new Map([...st, ...r.updates]) as typeof st;
      expectStateAfter(st, k);
      for (const bn of ['bn1', 'layer1.0.bn1', 'layer1.0.bn2', 'layer1.0.downsample.1']) {
        const run = st.get(`${bn}.running`)!, C = run.length / 2;
        expect(relErr(run.slice(0, C), fromHex(s.bn_buffers_after[`${bn}.running_mean`]))).toBeLessThan(1e-5);
        expect(relErr(run.slice(C), fromHex(s.bn_buffers_after[`${bn}.running_var`]))).toBeLessThan(1e-5);
      }
    }
  });

  test('CPU backend, fused: the optimizer state after both steps bit for bit', async () => {
    const m = compileNet(true);
    const b = new CpuBackend(m);
    await b.setState(initialState(m));
    for (let k = 0; k < 2; k++) {
      const out = await b.run('train', feeds(), { seed: 0, step: k }, ['loss']);
      expect(relErr(out.loss, fromHex(G.steps[k].loss))).toBeLessThan(1e-6);
      expectStateAfter(await b.getState(), k);
    }
  });
});
