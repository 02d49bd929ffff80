// Sends calls with @segment/analytics-node, unmodified, and prints what the library reported as JSON.
//
//   node send.mjs LIBS_DIR < {"host": ..., "writeKey": ..., "settings": {...}, "calls": [{"method": "track", "params": {...}}]}
//
// LIBS_DIR is where `npm install --prefix LIBS_DIR @segment/analytics-node@...` put the package
// (tests/e2e/test_segment_libraries.py does it). stdout gets one JSON object:
//   {"version", "calls": [{"method", "messageId", "timestamp", "error"}], "errors": [{"code", "reason", "messageId"}],
//    "requests": [{"url", "auth", "contentType", "contentEncoding", "events", "bodyHasWriteKey"}],
//    "responses": [{"status", "statusText"}]}
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { readFileSync } from 'node:fs'

const libs = resolve(process.argv[2] ?? '.')
const require = createRequire(join(libs, 'package.json'))
const { Analytics } = require('@segment/analytics-node')
const version = require('@segment/analytics-node/package.json').version

const input = JSON.parse(readFileSync(0, 'utf8'))
const analytics = new Analytics({ writeKey: input.writeKey, host: input.host, ...(input.settings ?? {}) })

const out = { version, calls: [], errors: [], requests: [], responses: [] }
const header = (headers, name) => {
  const key = Object.keys(headers ?? {}).find((k) => k.toLowerCase() === name)
  return key === undefined ? null : headers[key]
}
analytics.on('http_request', (request) => {
  const body = JSON.parse(request.body)
  out.requests.push({
    url: request.url,
    auth: (header(request.headers, 'authorization') ?? '').split(' ')[0].toLowerCase() || null,
    contentType: header(request.headers, 'content-type'),
    contentEncoding: header(request.headers, 'content-encoding'),
    events: body.batch.length,
    bodyHasWriteKey: body.writeKey === input.writeKey,
  })
})
analytics.on('http_response', (response) => {
  out.responses.push({ status: response.status, statusText: response.statusText })
})
analytics.on('error', (error) => {
  out.errors.push({
    code: error.code,
    reason: String(error.reason?.message ?? error.reason),
    messageId: error.ctx?.event?.messageId ?? null,
  })
})

for (const { method, params } of input.calls) {
  const entry = { method, messageId: null, error: null }
  out.calls.push(entry)
  // The callback runs once the message is delivered (or given up): its context has the library's messageId.
  analytics[method](params, (err, ctx) => {
    entry.messageId = ctx?.event?.messageId ?? null
    entry.timestamp = ctx?.event?.timestamp ?? null
    entry.error = err ? String(err.message ?? err) : null
  })
}

await analytics.closeAndFlush({ timeout: input.timeout ?? 20000 })
process.stdout.write(JSON.stringify(out) + '\n')
process.exit(0) // keep-alive sockets must not hold the process open
