/**
 * bench/zoo-mem.ts --concat (built: dist/bench/zoo-mem.js): DenseNet-121's concatenation bytes from the memory plan
 * against the architecture's own count (kuangliu's CIFAR DenseNet-121: blocks [6, 12, 24, 16], growth 32, a 64-channel
 * stem, transitions halving channels and map sizes), not against a previous run.
 */
import { execFileSync } from 'node:child_process';

/** Channels of each concat output per block and each block's final channels, for 32×32 inputs. */
function denseNet121Concats(): { elements: number; finals: number } {
  let c = 64, hw = 32 * 32, elements = 0, finals = 0;
  [6, 12, 24, 16].forEach((layers, b) => {
    for (let i = 0; i < layers; i++) { c += 32; elements += c * hw; }
    finals += c * hw;
    if (b < 3) { c = Math.floor(c / 2); hw /= 4; }
  });
  return { elements, finals };
}

test('zoo-mem --concat: DenseNet-121 concat bytes, saved bytes and one-buffer-per-block bytes match the architecture', () => {
  const batch = 2;
  const out = JSON.parse(execFileSync(process.execPath, ['dist/bench/zoo-mem.js', '--concat', '--batch', String(batch)], { encoding: 'utf8' }));
  const { elements, finals } = denseNet121Concats();
  expect(out.concats).toBe(6 + 12 + 24 + 16);
  expect(out.dense_blocks).toBe(4);
  expect(out.concat_output_bytes).toBe(elements * batch * 4);
  expect(out.slice_output_bytes_backward).toBe(elements * batch * 4); // the gradient splits every concat's error
  expect(out.concat_saved_bytes).toBe(elements * batch * 4); // every concat output is a BN input
  expect(out.one_buffer_per_block_bytes).toBe(finals * batch * 4);
  expect(out.concat_bytes_live_at_peak).toBeLessThanOrEqual(out.live_peak_bytes);
});
