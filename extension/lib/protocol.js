// The message protocol between seckill (the native host, C++) and the
// extension: version 1, JSON, one request id per request. docs/browser.md,
// "The extension", describes every message.

export const VERSION = 1;
export const HOST_NAME = 'com.seckill.native_host';

// An error with a code the C++ side maps to seckill::browser::errc or
// seckill::errc ("element_not_found", "element_not_actionable",
// "browser_closed", "timed_out", "invalid_argument", "protocol_error",
// "javascript_exception", "navigation_failed", "not_logged_in").
export class ProtocolError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

export const reply = (id, result) => ({v: VERSION, id, ok: true, result: result === undefined ? null : result});

export const failure = (id, err) => ({
  v: VERSION,
  id,
  ok: false,
  error: {
    code: err instanceof ProtocolError ? err.code : 'javascript_exception',
    message: String(err && err.message ? err.message : err),
    ...(err && Number.isInteger(err.step) ? {step: err.step} : {}),
  },
});

export const event = (body) => ({v: VERSION, event: body});
