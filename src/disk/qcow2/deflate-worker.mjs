// Worker of src/disk/qcow2/deflate-pool.ts: compresses the clusters of one chunk the way QEMU's
// qcow2-threads.c does (raw deflate, window bits -12 = deflateRaw windowBits 12, memLevel 9,
// Z_DEFAULT_COMPRESSION). Plain JS so it runs without a TypeScript loader and without the
// parent's execArgv.
import { parentPort } from 'node:worker_threads';
import { constants, deflateRawSync } from 'node:zlib';

const options = { level: constants.Z_DEFAULT_COMPRESSION, windowBits: 12, memLevel: 9 };
let zeros = new Uint8Array(0);

parentPort.on('message', (job) => {
  try {
    const { id, buffer, length, clusterSize } = job;
    if (zeros.length !== clusterSize) zeros = Buffer.alloc(clusterSize);
    const data = Buffer.from(buffer, 0, length);
    const count = Math.ceil(length / clusterSize);
    // Per cluster: -1 all zero (skipped), 0 stored uncompressed, n > 0 compressed to n bytes.
    const lengths = new Int32Array(count);
    const outputs = [];
    let total = 0;
    for (let i = 0; i < count; i++) {
      let cluster = data.subarray(i * clusterSize, Math.min(length, (i + 1) * clusterSize));
      if (cluster.equals(zeros.subarray(0, cluster.length))) {
        lengths[i] = -1;
        continue;
      }
      if (cluster.length < clusterSize) {
        // The disk's last cluster: compressed as a whole cluster, zero-padded (qcow2.txt).
        const full = Buffer.alloc(clusterSize);
        full.set(cluster);
        cluster = full;
      }
      const out = deflateRawSync(cluster, options);
      // QEMU keeps a compressed cluster only if it is smaller than a cluster.
      if (out.length >= clusterSize) continue;
      lengths[i] = out.length;
      outputs.push(out);
      total += out.length;
    }
    const packed = new Uint8Array(total);
    let at = 0;
    for (const out of outputs) {
      packed.set(out, at);
      at += out.length;
    }
    parentPort.postMessage({ id, buffer, lengths, packed }, [buffer, lengths.buffer, packed.buffer]);
  } catch (error) {
    parentPort.postMessage({ id: job.id, buffer: job.buffer, error: String(error?.stack ?? error) }, [job.buffer]);
  }
});
