// Drives Cairn's S3 endpoint with the current AWS SDK for JavaScript v3
// (@aws-sdk/client-s3, @aws-sdk/lib-storage) using the SDK's defaults, which send CRC32
// checksums (as aws-chunked trailers for streamed bodies). Run by ../test_js_sdk.py:
//   node run.mjs '<json config>'
// config: {endpoint, region, accessKeyId, secretAccessKey, bucket, workdir}
// Prints one JSON document on stdout: {steps: {name: {ok, error?, ...}}, objects:
// {key: sha256}, deleted: [keys], requests: [{command, headers}]}. Every step runs (a
// failing step does not stop the others); the process always exits 0 unless it is killed
// by its own deadline (exit 3), so pytest can report each step separately.
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  S3Client, CreateBucketCommand, PutObjectCommand, GetObjectCommand, HeadObjectCommand,
  ListObjectsV2Command, DeleteObjectsCommand,
} from "@aws-sdk/client-s3";
import { Upload } from "@aws-sdk/lib-storage";

const MiB = 1024 * 1024;
const DEADLINE_MS = 150_000;
const config = JSON.parse(process.argv[2]);
const report = { steps: {}, objects: {}, deleted: [], requests: [], sdk: {} };

function emit() {
  process.stdout.write(JSON.stringify(report) + "\n");
}

const deadline = setTimeout(() => {
  report.deadline = `run.mjs did not finish within ${DEADLINE_MS} ms`;
  emit();
  process.exit(3);
}, DEADLINE_MS);

const client = new S3Client({
  endpoint: config.endpoint,
  region: config.region,
  forcePathStyle: true,
  credentials: { accessKeyId: config.accessKeyId, secretAccessKey: config.secretAccessKey },
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 5000, requestTimeout: 60000 },
});

// Records the headers each request really carried (after signing and checksums).
const INTERESTING = /^(x-amz-content-sha256|content-encoding|transfer-encoding|x-amz-trailer|x-amz-decoded-content-length|content-length|x-amz-checksum-.*|x-amz-sdk-checksum-algorithm)$/i;
client.middlewareStack.add(
  (next, context) => async (args) => {
    const headers = {};
    for (const [name, value] of Object.entries(args.request?.headers ?? {})) {
      if (INTERESTING.test(name)) headers[name.toLowerCase()] = String(value);
    }
    report.requests.push({ command: context.commandName, headers });
    return next(args);
  },
  { step: "deserialize", name: "cairnRecordHeaders", priority: "low" },
);

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const md5 = (buf) => createHash("md5").update(buf).digest("hex");

async function bodyBytes(body) {
  return Buffer.from(await body.transformToByteArray());
}

async function step(name, fn) {
  const started = Date.now();
  try {
    const details = (await fn()) ?? {};
    report.steps[name] = { ok: true, ms: Date.now() - started, ...details };
  } catch (err) {
    report.steps[name] = {
      ok: false, ms: Date.now() - started,
      error: `${err?.name ?? "Error"}: ${err?.message ?? err}`,
      code: err?.Code ?? err?.name, status: err?.$metadata?.httpStatusCode,
    };
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function getAndCompare(key, expected) {
  const got = await client.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }));
  const bytes = await bodyBytes(got.Body);
  check(sha256(bytes) === sha256(expected),
    `GetObject ${key}: sha256 ${sha256(bytes)} != ${sha256(expected)} (${bytes.length} bytes)`);
  return got;
}

function writeFile(name, buf) {
  const path = join(config.workdir, name);
  writeFileSync(path, buf);
  return path;
}

const bucket = config.bucket;
mkdirSync(config.workdir, { recursive: true });
const small = randomBytes(MiB + 7);
const streamed = randomBytes(3 * MiB + 5);
const streamedSha = randomBytes(2 * MiB + 3);
const big = randomBytes(30 * MiB + 12345);
const streamedPath = writeFile("streamed.bin", streamed);
const streamedShaPath = writeFile("streamed-sha.bin", streamedSha);
const bigPath = writeFile("big.bin", big);

for (const [name, path] of [["client_s3", "@aws-sdk/client-s3"], ["lib_storage", "@aws-sdk/lib-storage"]]) {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    report.sdk[name] = JSON.parse(
      readFileSync(join(here, "node_modules", path, "package.json"), "utf8")).version;
  } catch {
    report.sdk[name] = "unknown";
  }
}

await step("create_bucket", async () => {
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
});

await step("put_buffer", async () => {
  const put = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/buffer.bin", Body: small, ContentType: "application/x-js",
    Metadata: { origin: "js-sdk" },
  }));
  check(put.ETag === `"${md5(small)}"`, `ETag ${put.ETag} is not the MD5 ${md5(small)}`);
  const got = await getAndCompare("js/buffer.bin", small);
  check(got.ContentType === "application/x-js", `ContentType ${got.ContentType}`);
  check(got.Metadata?.origin === "js-sdk", `Metadata ${JSON.stringify(got.Metadata)}`);
  report.objects["js/buffer.bin"] = sha256(small);
  return { etag: put.ETag };
});

await step("put_stream_crc32_trailer", async () => {
  const put = await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/streamed.bin", Body: createReadStream(streamedPath),
    ContentLength: streamed.length,
  }));
  check(put.ETag === `"${md5(streamed)}"`, `ETag ${put.ETag} is not the MD5`);
  await getAndCompare("js/streamed.bin", streamed);
  report.objects["js/streamed.bin"] = sha256(streamed);
  return { etag: put.ETag };
});

await step("put_stream_sha256", async () => {
  await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/sha256-stream.bin", Body: createReadStream(streamedShaPath),
    ContentLength: streamedSha.length, ChecksumAlgorithm: "SHA256",
  }));
  await getAndCompare("js/sha256-stream.bin", streamedSha);
  report.objects["js/sha256-stream.bin"] = sha256(streamedSha);
});

await step("put_buffer_sha256", async () => {
  const body = randomBytes(100_000);
  await client.send(new PutObjectCommand({
    Bucket: bucket, Key: "js/sha256-buffer.bin", Body: body, ChecksumAlgorithm: "SHA256",
  }));
  await getAndCompare("js/sha256-buffer.bin", body);
  report.objects["js/sha256-buffer.bin"] = sha256(body);
});

await step("multipart_upload_lib_storage", async () => {
  const upload = new Upload({
    client,
    params: { Bucket: bucket, Key: "js/multipart.bin", Body: createReadStream(bigPath) },
    partSize: 5 * MiB,
    queueSize: 4,
    leavePartsOnError: false,
  });
  const result = await upload.done();
  const parts = Math.ceil(big.length / (5 * MiB));
  const partMd5s = [];
  for (let i = 0; i < big.length; i += 5 * MiB) {
    partMd5s.push(createHash("md5").update(big.subarray(i, i + 5 * MiB)).digest());
  }
  const expectedEtag = `"${md5(Buffer.concat(partMd5s))}-${parts}"`;
  check(result.ETag === expectedEtag, `ETag ${result.ETag}, expected ${expectedEtag}`);
  const head = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: "js/multipart.bin" }));
  check(head.ContentLength === big.length, `ContentLength ${head.ContentLength}`);
  await getAndCompare("js/multipart.bin", big);
  report.objects["js/multipart.bin"] = sha256(big);
  return { etag: result.ETag, parts };
});

await step("get_range", async () => {
  const got = await client.send(new GetObjectCommand({
    Bucket: bucket, Key: "js/buffer.bin", Range: "bytes=100-199",
  }));
  const bytes = await bodyBytes(got.Body);
  check(bytes.equals(small.subarray(100, 200)), "range bytes differ");
  check(got.ContentRange === `bytes 100-199/${small.length}`, `ContentRange ${got.ContentRange}`);
});

await step("put_tmp_objects", async () => {
  for (const key of ["tmp/a", "tmp/b c", "tmp/ü+%"]) {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: key }));
  }
});

await step("list_objects_v2", async () => {
  const all = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "js/" }));
  const keys = (all.Contents ?? []).map((o) => o.Key);
  const expected = Object.keys(report.objects).sort();
  check(JSON.stringify(keys) === JSON.stringify(expected),
    `keys ${JSON.stringify(keys)} != ${JSON.stringify(expected)}`);
  const top = await client.send(new ListObjectsV2Command({ Bucket: bucket, Delimiter: "/" }));
  const prefixes = (top.CommonPrefixes ?? []).map((p) => p.Prefix);
  check(JSON.stringify(prefixes) === JSON.stringify(["js/", "tmp/"]),
    `CommonPrefixes ${JSON.stringify(prefixes)}`);
  const paged = [];
  let token;
  for (let i = 0; i < 20; i++) {
    const page = await client.send(new ListObjectsV2Command({
      Bucket: bucket, MaxKeys: 2, ContinuationToken: token,
    }));
    paged.push(...(page.Contents ?? []).map((o) => o.Key));
    if (!page.IsTruncated) break;
    token = page.NextContinuationToken;
  }
  check(paged.length === expected.length + 3, `paged listing has ${paged.length} keys`);
  return { keys };
});

await step("delete_objects", async () => {
  const keys = ["tmp/a", "tmp/b c", "tmp/ü+%", "tmp/never-existed"];
  const result = await client.send(new DeleteObjectsCommand({
    Bucket: bucket, Delete: { Objects: keys.map((Key) => ({ Key })), Quiet: false },
  }));
  const deleted = (result.Deleted ?? []).map((d) => d.Key).sort();
  check(JSON.stringify(deleted) === JSON.stringify([...keys].sort()),
    `Deleted ${JSON.stringify(deleted)}`);
  check(!(result.Errors ?? []).length, `Errors ${JSON.stringify(result.Errors)}`);
  const after = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: "tmp/" }));
  check((after.KeyCount ?? 0) === 0, `KeyCount after delete ${after.KeyCount}`);
  report.deleted = keys;
});

clearTimeout(deadline);
emit();
