// ES modules do not read NODE_PATH. Lambda's Node.js runtimes still let an ES module handler
// import the SDK they ship; this resolve hook (registered by bootstrap.js before it imports
// an ES module handler) retries a bare specifier that failed from each NODE_PATH entry.
import path from 'node:path';
import { pathToFileURL } from 'node:url';

let parents = [];

export async function initialize(data) {
  // For each <dir>/node_modules entry, a file in <dir>: resolving from it finds the entry.
  parents = (data && data.paths ? data.paths : [])
    .filter((dir) => path.basename(dir) === 'node_modules')
    .map((dir) => pathToFileURL(path.join(path.dirname(dir), 'index.mjs')).href);
}

function bare(specifier) {
  return !specifier.startsWith('.') && !specifier.startsWith('/') && !/^[a-z][a-z0-9+.-]*:/i.test(specifier);
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!bare(specifier) || (err && err.code !== 'ERR_MODULE_NOT_FOUND')) throw err;
    for (const parentURL of parents) {
      try {
        return await nextResolve(specifier, { ...context, parentURL });
      } catch {
        // the next entry
      }
    }
    throw err;
  }
}
