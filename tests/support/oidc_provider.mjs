// A real OpenID provider for the single sign-on tests: `oidc-provider` (a certified implementation, from the npm
// registry, pinned in package-lock.json), on 127.0.0.1 only. Started once per test worker by
// tests/support/oidc.py:
//
//   node tests/support/oidc_provider.mjs PORT REDIRECT_URI[,REDIRECT_URI…]
//
// What the tests drive, over plain HTTP:
//   - the provider itself: discovery, /auth (code flow, PKCE required), /token, /jwks, /me (UserInfo);
//   - PUT /test/accounts/ID  {"groups": [...], "email": "...", "fault": null|"expired"|"wrong-audience"}
//     makes or replaces a test user (each test makes its own, so tests never share one); DELETE removes it
//     (a leaver: the provider signs them in no more);
//   - GET /interaction/UID shows a login form; POST it with `login` (the account id) and optional `amr`
//     (comma-separated, e.g. "pwd,otp") and `acr`: the provider then finishes the authorisation request and
//     redirects to the client with its code. An unknown login is refused (access_denied), as a real provider
//     refuses a removed user.
//
// The two faults make the provider itself sign ID tokens the app must refuse: one expired ten minutes ago, one
// for another client's audience (naming ours as its authorised party). They are made with the provider's own issuing code and key (the same JWKS the
// app fetches), bent only where the test needs it, since no honest provider would issue either.
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const [port, redirectUris] = process.argv.slice(2);
if (!port || !redirectUris) {
  console.error('usage: node oidc_provider.mjs PORT REDIRECT_URI[,REDIRECT_URI…]');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;

const CLIENT_ID = 'passid-verify';
const CLIENT_SECRET = 'test-only-client-secret-not-for-production';

const accounts = new Map();

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: redirectUris.split(','),
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: ['test-only-cookie-key'] },
  claims: {
    acr: null,
    amr: null,
    auth_time: null,
    iss: null,
    sid: null,
    // How the person signed in, in every ID token, as banks' providers send it (Entra ID and Okta always do).
    openid: ['sub', 'acr', 'amr', 'auth_time'],
    profile: ['preferred_username', 'name'],
    email: ['email'],
    groups: ['groups'],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, id) {
    const account = accounts.get(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id, preferred_username: id, name: id, email: account.email ?? `${id}@bank.example`,
          groups: account.groups ?? [],
        };
      },
    };
  },
  // First-party: every scope the client asks for is granted without a consent screen, as a bank's own
  // provider does for its own staff applications.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.requestParamScopes ? [...ctx.oidc.requestParamScopes].join(' ') : 'openid');
    await grant.save();
    return grant;
  },
});

const epochTime = () => Math.floor(Date.now() / 1000);
const issueIdToken = provider.IdToken.prototype.issue;
provider.IdToken.prototype.issue = async function issue(options = {}) {
  const fault = options.use === 'idtoken' ? accounts.get(this.available.sub)?.fault : undefined;
  if (fault === 'expired') {
    this.set('iat', epochTime() - 900);
    return issueIdToken.call(this, { ...options, expiresAt: epochTime() - 600 });
  }
  if (fault === 'wrong-audience') {
    // For another application, naming ours as its authorised party: only a check of `aud` itself refuses it.
    this.set('azp', this.client.clientId);
    const client = this.client;
    this.client = new Proxy(client, {
      get: (target, key) => (key === 'clientId' ? 'another-application' : Reflect.get(target, key)),
    });
  }
  return issueIdToken.call(this, options);
};

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, body, type = 'text/plain') {
  res.writeHead(status, { 'Content-Type': `${type}; charset=utf-8`, 'Cache-Control': 'no-store' });
  res.end(body);
}

const escape = (text) => String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function interaction(req, res, uid) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (req.method === 'GET') {
    return send(res, 200, `<!doctype html><title>Test provider</title><form method="post">
      <input name="login" autofocus> <input name="amr" placeholder="pwd,otp"> <input name="acr">
      <button>Sign in</button></form><p>${escape(details.prompt.name)}</p>`, 'text/html');
  }
  const form = new URLSearchParams(await readBody(req));
  const login = form.get('login') ?? '';
  const result = accounts.has(login)
    ? {
      login: {
        accountId: login,
        amr: (form.get('amr') || 'pwd').split(',').filter(Boolean),
        ...(form.get('acr') ? { acr: form.get('acr') } : {}),
      },
    }
    : { error: 'access_denied', error_description: 'this user may not sign in' };
  return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: false });
}

async function testAccounts(req, res, id) {
  if (req.method === 'DELETE') {
    accounts.delete(id);
    return send(res, 204, '');
  }
  if (req.method !== 'PUT') return send(res, 405, 'PUT or DELETE');
  accounts.set(id, JSON.parse(await readBody(req) || '{}'));
  return send(res, 204, '');
}

const callback = provider.callback();
createServer(async (req, res) => {
  try {
    const { pathname } = new URL(req.url, issuer);
    const interactionMatch = pathname.match(/^\/interaction\/([^/]+)$/);
    if (interactionMatch) return await interaction(req, res, interactionMatch[1]);
    const accountMatch = pathname.match(/^\/test\/accounts\/([^/]+)$/);
    if (accountMatch) return await testAccounts(req, res, decodeURIComponent(accountMatch[1]));
    return callback(req, res);
  } catch (error) {
    return send(res, 500, String(error?.message ?? error));
  }
}).listen(Number(port), '127.0.0.1', () => {
  console.log(`oidc test provider on ${issuer}`);
});
