// A real OpenID provider for the social login tests: panva's oidc-provider
// (pinned in .ci/install) with its development interactions (a login form
// that takes any login name and password, then a consent form), on
// 127.0.0.1 over plain HTTP. tests/api/harness/oidc.rs starts and drives it.
//
//   node tests/oidc/provider.mjs CONFIG_JSON_PATH
//
// The configuration file:
//   {"port": 0,
//    "clients": [{"client_id": "...", "client_secret": "...",
//                 "redirect_uris": ["http://127.0.0.1:PORT/..."]}],
//    "jwk_path": "tests/api/fixtures/oidc-signing-key.jwk.json"}
//
// Prints `READY http://127.0.0.1:<port>` (the issuer) once listening, and
// exits when its standard input closes, so that a test process that dies
// leaves no provider behind. More clients: POST /__test/clients (below).
//
// The account id is the login name typed in the login form; the claims are
// derived from it: sub = the login name; with an '@' in it, email = the login
// name and email_verified = it does not start with "unverified" (without an
// '@', no email claim at all); given_name "Given-<local part>", family_name
// "Family", name "Given-<local part> Family", preferred_username the local
// part. The claims of the granted scopes go into the ID token too.
//
// oidc-provider is ESM only, and ESM resolution ignores NODE_PATH: the
// harness passes the tools' node_modules directory as OIDC_NODE_MODULES (or
// NODE_PATH), from which it is resolved; else a plain import is tried.

import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

async function loadProvider() {
  const dirs = [
    process.env.OIDC_NODE_MODULES,
    ...(process.env.NODE_PATH ?? '').split(':'),
  ].filter(Boolean);
  for (const dir of dirs) {
    let entry;
    try {
      entry = createRequire(join(resolve(dir), 'noop.js')).resolve('oidc-provider');
    } catch {
      continue;
    }
    return (await import(pathToFileURL(entry).href)).default;
  }
  try {
    return (await import('oidc-provider')).default;
  } catch (err) {
    console.error(
      `provider.mjs: cannot load oidc-provider (looked in ${dirs.join(', ') || 'no directory'} `
        + `and from the script): run .ci/install. ${err}`,
    );
    process.exit(2);
  }
}

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node tests/oidc/provider.mjs CONFIG_JSON_PATH');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));
const jwk = JSON.parse(readFileSync(config.jwk_path, 'utf8'));

const Provider = await loadProvider();

// The issuer carries the port, known only once listening: listen first, then
// hand the requests to the provider.
const server = createServer();
await new Promise((ok, fail) => {
  server.once('error', fail);
  server.listen(config.port ?? 0, '127.0.0.1', ok);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

function claimsOf(login) {
  const at = login.indexOf('@');
  const local = at === -1 ? login : login.slice(0, at);
  const claims = {
    sub: login,
    name: `Given-${local} Family`,
    given_name: `Given-${local}`,
    family_name: 'Family',
    preferred_username: local,
  };
  if (at !== -1) {
    claims.email = login;
    claims.email_verified = !login.startsWith('unverified');
  }
  return claims;
}

function clientMetadata(c) {
  return {
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris,
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // Either of client_secret_basic and client_secret_post is accepted for
    // a client registered with one of them.
    token_endpoint_auth_method: c.token_endpoint_auth_method ?? 'client_secret_basic',
  };
}

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map(clientMetadata),
  jwks: { keys: [jwk] },
  cookies: {
    // Signed cookies; over plain HTTP they are not `secure` (oidc-provider
    // sets that only on requests it sees as secure).
    keys: ['allauth-server-oidc-test-cookie-key'],
  },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username'],
  },
  scopes: ['openid', 'email', 'profile'],
  // The granted scopes' claims in the ID token, not only at userinfo.
  conformIdTokenClaims: false,
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return claimsOf(id);
      },
    };
  },
  features: {
    devInteractions: { enabled: true },
    revocation: { enabled: true },
    userinfo: { enabled: true },
  },
  // PKCE (S256) allowed, required only of public clients.
  pkce: {
    required: (ctx, client) => client.clientAuthMethod === 'none',
  },
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  responseTypes: ['code'],
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 600,
    IdToken: 600,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
  },
  // Errors as plain text, so a test failure shows what went wrong.
  async renderError(ctx, out) {
    ctx.type = 'text';
    ctx.body = `${out.error}: ${out.error_description ?? ''}\n`;
  },
});

// Clients added (or replaced) once running, for a relying party whose
// redirect URI's port is known only after the provider's: POST
// /__test/clients with one client as in the configuration file; 204. They
// live in the provider's (in-memory) adapter, as dynamically registered
// clients do; the configuration file's clients cannot be replaced.
const staticIds = new Set((config.clients ?? []).map((c) => c.client_id));
const handle = provider.callback();
server.on('request', (req, res) => {
  if (req.url !== '/__test/clients') {
    handle(req, res);
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', async () => {
    try {
      if (req.method !== 'POST') throw new Error('POST a client');
      const client = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (staticIds.has(client.client_id)) {
        res.writeHead(409, { 'content-type': 'text/plain' });
        res.end(`client ${client.client_id} is in the configuration file\n`);
        return;
      }
      await provider.Client.adapter.upsert(client.client_id, clientMetadata(client));
      // Fails here, not at the first authorization, on invalid metadata.
      await provider.Client.find(client.client_id).catch(async (err) => {
        await provider.Client.adapter.destroy(client.client_id);
        throw err;
      });
      res.writeHead(204);
      res.end();
    } catch (err) {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`${err}\n`);
    }
  });
});

if (process.env.OIDC_PROVIDER_DEBUG) {
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  for (const event of ['authorization.error', 'grant.error', 'userinfo.error', 'revocation.error']) {
    provider.on(event, (ctx, err) => console.error(event, err));
  }
}

process.stdout.write(`READY ${issuer}\n`);

// Gone with the test process: stdin reaches EOF when it closes its end.
process.stdin.on('end', () => process.exit(0));
process.stdin.on('error', () => process.exit(0));
process.stdin.resume();
