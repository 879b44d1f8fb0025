'use strict';
// warmline's Node.js runtime: runs one Lambda handler over the Runtime API, as Lambda's
// Node.js runtimes do (docs/protocols.md §3.10, docs/runtimes.md).
//
// - _HANDLER "path/module.fn" under LAMBDA_TASK_ROOT; .mjs, .cjs, or .js (ES module when the
//   nearest package.json says "type": "module", CommonJS otherwise).
// - async handlers (a returned promise) and callback handlers (event, context, callback);
//   with a callback, context.callbackWaitsForEmptyEventLoop (default true) holds the
//   response until the event loop is empty.
// - errors are {errorType, errorMessage, trace}; console lines are
//   "<ISO time>\t<request id>\t<LEVEL>\t<message>" with newlines as \r (one log event each).
// - HTTPS to host names outside NO_PROXY goes through HTTPS_PROXY with a CONNECT tunnel
//   (the AWS SDK v3 does not read HTTPS_PROXY): the emulator's AWS host names reach it.

const http = require('node:http');
const https = require('node:https');
const tls = require('node:tls');
const net = require('node:net');
const path = require('node:path');
const fs = require('node:fs');
const util = require('node:util');
const { pathToFileURL } = require('node:url');

const API = process.env.AWS_LAMBDA_RUNTIME_API || '127.0.0.1:9001';
const [API_HOST, API_PORT] = API.split(':');
const TASK_ROOT = process.env.LAMBDA_TASK_ROOT || process.cwd();
const HANDLER = process.env._HANDLER || '';
const runtimeAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

let requestId; // undefined during init, as Lambda's Node runtime logs it

// --- logging -----------------------------------------------------------------------------

function installLogging() {
  const levels = { trace: 'TRACE', debug: 'DEBUG', info: 'INFO', log: 'INFO', warn: 'WARN', error: 'ERROR' };
  for (const [method, level] of Object.entries(levels)) {
    console[method] = (...args) => {
      const text = util.format(...args).replace(/\n/g, '\r');
      process.stdout.write(`${new Date().toISOString()}\t${requestId}\t${level}\t${text}\n`);
    };
  }
}

// --- the proxy for AWS host names --------------------------------------------------------

function bypassed(host, rules) {
  host = host.toLowerCase();
  return rules.some((rule) => {
    if (rule === '*') return true;
    const bare = rule.replace(/^\*?\./, '');
    return host === bare || host.endsWith('.' + bare);
  });
}

function installProxy() {
  const url = process.env.HTTPS_PROXY || process.env.https_proxy;
  if (!url) return;
  const proxy = new URL(url);
  const rules = (process.env.NO_PROXY || process.env.no_proxy || '')
    .split(',').map((r) => r.trim().toLowerCase()).filter(Boolean);
  const direct = https.Agent.prototype.createConnection;
  https.Agent.prototype.createConnection = function createConnection(options, callback) {
    const host = options.host || options.hostname || 'localhost';
    if (typeof callback !== 'function' || net.isIP(host) || bypassed(host, rules)) {
      return direct.call(this, options, callback);
    }
    const port = options.port || 443;
    const connect = http.request({
      host: proxy.hostname, port: proxy.port || 80, method: 'CONNECT',
      path: `${host}:${port}`, headers: { host: `${host}:${port}` }, agent: false,
    });
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        callback(new Error(`proxy refused CONNECT ${host}:${port}: ${res.statusCode}`));
        return;
      }
      callback(null, tls.connect({ ...options, socket, servername: options.servername || host }));
    });
    connect.once('error', (err) => callback(err));
    connect.end();
    return undefined;
  };
}

// --- the Runtime API ---------------------------------------------------------------------

function call(method, resource, body, headers) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(body);
    const req = http.request({
      host: API_HOST, port: API_PORT, method, agent: runtimeAgent,
      path: `/2018-06-01/runtime/${resource}`,
      headers: { ...(headers || {}), ...(data ? { 'Content-Length': data.length } : {}) },
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(data);
  });
}

function errorShape(err) {
  if (err instanceof Error) {
    const trace = typeof err.stack === 'string' ? err.stack.split('\n') : [];
    return { errorType: err.name || 'Error', errorMessage: err.message, trace };
  }
  let message;
  try { message = typeof err === 'string' ? err : JSON.stringify(err); } catch { message = String(err); }
  return { errorType: typeof err, errorMessage: message, trace: [] };
}

async function postError(resource, err, type) {
  const shape = type ? { ...errorShape(err), errorType: type } : errorShape(err);
  return call('POST', resource, JSON.stringify(shape), {
    'Content-Type': 'application/json',
    'Lambda-Runtime-Function-Error-Type': shape.errorType,
  }).then(() => shape);
}

// --- loading the handler -----------------------------------------------------------------

class RuntimeError extends Error {
  constructor(name, message) { super(message); this.name = name; }
}

function isModuleType(file) {
  let dir = path.dirname(file);
  for (;;) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest)) {
      try { return JSON.parse(fs.readFileSync(manifest, 'utf8')).type === 'module'; } catch { return false; }
    }
    const parent = path.dirname(dir);
    if (parent === dir || !dir.startsWith(TASK_ROOT)) return false;
    dir = parent;
  }
}

function registerResolveHook() {
  // ES modules ignore NODE_PATH; the runtime's SDK must still resolve from an ES handler.
  const { register } = require('node:module');
  if (typeof register !== 'function') return;
  const paths = (process.env.NODE_PATH || '').split(':').filter(Boolean);
  register(pathToFileURL(path.join(__dirname, 'resolve.mjs')).href, { data: { paths } });
}

async function loadModule(file) {
  const esm = file.endsWith('.mjs') || (file.endsWith('.js') && isModuleType(file));
  if (!esm) {
    try {
      return require(file);
    } catch (err) {
      if (err && err.code !== 'ERR_REQUIRE_ESM') throw err;
    }
  }
  registerResolveHook();
  return import(pathToFileURL(file).href);
}

async function loadHandler() {
  const slash = HANDLER.lastIndexOf('/');
  const dir = HANDLER.slice(0, slash + 1);
  const tail = HANDLER.slice(slash + 1);
  const dot = tail.indexOf('.');
  if (dot <= 0 || dot === tail.length - 1) {
    throw new RuntimeError('Runtime.MalformedHandlerName', `Bad handler ${HANDLER}`);
  }
  const moduleName = dir + tail.slice(0, dot);
  const names = tail.slice(dot + 1).split('.');
  const base = path.resolve(TASK_ROOT, moduleName);
  const file = ['.js', '.mjs', '.cjs'].map((ext) => base + ext).find((f) => fs.existsSync(f));
  if (!file) {
    throw new RuntimeError('Runtime.ImportModuleError', `Error: Cannot find module '${moduleName}'`);
  }
  let mod;
  try {
    mod = await loadModule(file);
  } catch (err) {
    if (err instanceof SyntaxError) throw new RuntimeError('Runtime.UserCodeSyntaxError', `${err.name}: ${err.message}`);
    if (err && (err.code === 'MODULE_NOT_FOUND' || err.code === 'ERR_MODULE_NOT_FOUND')) {
      throw new RuntimeError('Runtime.ImportModuleError', `Error: ${err.message}`);
    }
    throw err;
  }
  let fn = mod;
  for (const name of names) fn = fn == null ? undefined : fn[name];
  if (fn === undefined && mod && mod.default) {
    fn = mod.default;
    for (const name of names) fn = fn == null ? undefined : fn[name];
  }
  if (typeof fn !== 'function') {
    throw new RuntimeError('Runtime.HandlerNotFound', `${moduleName}.${names.join('.')} is undefined or not exported`);
  }
  return fn;
}

// --- invocations -------------------------------------------------------------------------

function makeContext(headers, finish) {
  const deadline = Number(headers['lambda-runtime-deadline-ms']);
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: headers['lambda-runtime-invoked-function-arn'],
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: headers['lambda-runtime-aws-request-id'],
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(deadline - Date.now(), 0),
    done: (err, result) => finish(err, result, false),
    succeed: (result) => finish(null, result, false),
    fail: (err) => finish(err || 'handled', undefined, false),
  };
  if (headers['lambda-runtime-client-context']) {
    try { context.clientContext = JSON.parse(headers['lambda-runtime-client-context']); } catch { /* kept out */ }
  }
  if (headers['lambda-runtime-cognito-identity']) {
    try { context.identity = JSON.parse(headers['lambda-runtime-cognito-identity']); } catch { /* kept out */ }
  }
  return context;
}

function invoke(handler, event, headers) {
  return new Promise((resolve) => {
    let settled = false;
    let context;
    const finish = (err, result, fromCallback) => {
      if (settled) return;
      settled = true;
      const outcome = { err: err === undefined || err === null ? null : err, result };
      if (fromCallback && context.callbackWaitsForEmptyEventLoop) {
        process.once('beforeExit', () => resolve(outcome)); // the handler's work is done
      } else {
        resolve(outcome);
      }
    };
    context = makeContext(headers, finish);
    try {
      const returned = handler(event, context, (err, result) => finish(err, result, true));
      if (returned && typeof returned.then === 'function') {
        returned.then((result) => finish(null, result, false), (err) => finish(err || 'rejected', undefined, false));
      }
    } catch (err) {
      finish(err, undefined, false);
    }
  });
}

async function loop(handler) {
  for (;;) {
    const next = await call('GET', 'invocation/next');
    const headers = next.headers;
    requestId = headers['lambda-runtime-aws-request-id'];
    process.env._X_AMZN_TRACE_ID = headers['lambda-runtime-trace-id'] || '';
    let event;
    try { event = JSON.parse(next.body.toString('utf8')); } catch { event = next.body.toString('utf8'); }
    const { err, result } = await invoke(handler, event, headers);
    if (err !== null) {
      const shape = errorShape(err);
      console.error('Invoke Error', '\t' + JSON.stringify(shape));
      await postError(`invocation/${requestId}/error`, err);
      continue;
    }
    let body;
    try {
      body = JSON.stringify(result === undefined ? null : result);
    } catch (e) {
      await postError(`invocation/${requestId}/error`, e, 'Runtime.MarshalError');
      continue;
    }
    const posted = await call('POST', `invocation/${requestId}/response`, body, { 'Content-Type': 'application/json' });
    if (posted.status === 413) {
      console.error('Invoke Error', '\t' + posted.body.toString('utf8'));
    }
  }
}

async function main() {
  installLogging();
  installProxy();
  let handler;
  try {
    handler = await loadHandler();
  } catch (err) {
    const shape = errorShape(err);
    console.error('Uncaught Exception', '\t' + JSON.stringify(shape));
    await postError('init/error', err);
    process.exit(1);
  }
  process.on('uncaughtException', async (err) => {
    console.error('Uncaught Exception', '\t' + JSON.stringify(errorShape(err)));
    if (requestId) await postError(`invocation/${requestId}/error`, err).catch(() => {});
    process.exit(129);
  });
  process.on('unhandledRejection', async (reason) => {
    const err = reason instanceof Error ? reason : new RuntimeError('Runtime.UnhandledPromiseRejection', String(reason));
    console.error('Unhandled Promise Rejection', '\t' + JSON.stringify(errorShape(err)));
    if (requestId) await postError(`invocation/${requestId}/error`, err).catch(() => {});
    process.exit(128);
  });
  await loop(handler);
}

main();
