/**
 * Shared by the CPU (test/unit) and WebGPU (test/webgpu) checks against peppp_step.json: the golden network compiled
 * with its formats as precision classes, its initial state, and what the golden records after each step.
 */
import { frontEnd } from '../../dsl/frontend.js';
import { runPasses } from '../../passes/pipeline.js';
import { parsePolicy } from '../../ir/precision/index.js';
import { Module } from '../../ir/graph.js';
import { initState } from '../../runtime/train/init.js';
import { fromHex, golden } from './helpers.js';

export const G = golden('peppp_step.json');
/** The golden's formats and OptimLP quantizers, its loss scale (grad_scaling = 1/1000), nearest rounding. */
export const SPEC = 'low=float<4,3> high=float<6,9> W=low G=low M=high ACC=high loss_scale=1000';
export const SGD = { kind: 'sgd' as const, lr: 0.05, momentum: 0.9, wd: 5e-4 };
export const PARAMS: string[] = G.case.optimizer.param_order;
export const BNS = ['bn1', 'layer1.0.bn1', 'layer1.0.bn2', 'layer1.0.downsample.1'];

export function compileNet(fuse = true): Module {
  return runPasses(frontEnd('test/fixtures/peppp_net.ts', 4), { batch: 4, optimizer: SGD, precision: parsePolicy(SPEC), fuse, verifyEach: true });
}

/** lpc's state from the golden's initial parameters and BN buffers; the accumulators start as copies (OptimLP). */
export function initialState(m: Module): Map<string, Float32Array> {
  const st = initState(m, 0);
  for (const p of PARAMS) {
    const v = fromHex(G.initial.params[p]);
    expect(st.get(p)!.length).toBe(v.length);
    st.set(p, v);
    st.set(`${p}.acc`, v.slice());
  }
  for (const bn of BNS)
    st.set(`${bn}.running`, Float32Array.from([...fromHex(G.initial.bn_buffers[`${bn}.running_mean`]), ...fromHex(G.initial.bn_buffers[`${bn}.running_var`])]));
  return st;
}

export const feeds = () => ({ x: fromHex(G.input), y: Int32Array.from(G.target as number[]), lr: Float32Array.of(0.05) });

/** float32 bit patterns as hex, -0 read as +0 (PyTorch's zero_grad() + accumulate turns -0 into +0). */
export const hex = (a: Float32Array) => [...new Uint32Array(Float32Array.from(a, (v) => (v === 0 ? 0 : v)).buffer)].map((u) => u.toString(16).padStart(8, '0'));
export const goldenHex = (t: { hex: string[] }) => hex(fromHex(t));

/** After step `k` (0-based): every parameter, accumulator and momentum buffer bit for bit as the golden. */
export function expectStateAfter(st: Map<string, Float32Array>, k: number): void {
  const s = G.steps[k];
  for (const p of PARAMS) {
    expect([p, 'params_after', hex(st.get(p)!)]).toEqual([p, 'params_after', goldenHex(s.params_after[p])]);
    expect([p, 'weight_acc_after', hex(st.get(`${p}.acc`)!)]).toEqual([p, 'weight_acc_after', goldenHex(s.weight_acc_after[p])]);
    expect([p, 'momentum_after', hex(st.get(`${p}.momentum`)!)]).toEqual([p, 'momentum_after', goldenHex(s.momentum_after[p])]);
  }
}
