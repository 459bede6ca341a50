// The OpenID Provider of the SSO tests: npm's `oidc-provider` (an OpenID
// Certified OP nobody here wrote), installed by tests/peers/build-oidc-provider.sh.
//
//   node tests/peers/oidc_provider.mjs <settings.json> <cache dir of build-oidc-provider.sh>
//
// settings.json (written by the test fixture, tests/accounts/sso/peers.py):
//   {"port": 40123, "issuer": "http://127.0.0.1:40123",
//    "clients": [{"client_id", "client_secret", "redirect_uris", "post_logout_redirect_uris"}],
//    "accounts": {"alice": {"email": "...", "name": "...", "groups": ["dev", ...]}},
//    "id_token_ttl": 3600}
// Listens on 127.0.0.1 only. PKCE (S256) is required of every client. Sign-in
// is the provider's own development interaction (a form: any password; the
// login must be one of `accounts`, else the provider answers an error); consent
// is implied (a grant of what was asked is loaded), so a journey is: the form,
// then back to the client. RP-initiated logout's confirmation page submits
// itself. Prints "listening <issuer>" once ready.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(
  pathToFileURL(join(process.argv[3], 'node_modules/oidc-provider/lib/index.js')).href
);

const settings = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const accounts = settings.accounts;

const provider = new Provider(settings.issuer, {
  clients: settings.clients.map((c) => ({
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...c,
  })),
  pkce: { required: () => true },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
    groups: ['groups'],
  },
  conformIdTokenClaims: false, // the scopes' claims in the ID token, as Harbor expects
  ttl: { IdToken: settings.id_token_ttl || 3600, AccessToken: 3600, Session: 3600 },
  cookies: { keys: ['berth-test-op-cookie-key'], names: { session: 'op_session', interaction: 'op_interaction', resume: 'op_resume' } },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      logoutSource: async (ctx, form) => {
        ctx.body = `<!DOCTYPE html><title>Signing out</title><body>${form}` +
          '<button id="op-logout" form="op.logoutForm" name="logout" value="yes">Sign out</button>' +
          '<script>document.getElementById("op-logout").click()</script></body>';
      },
    },
  },
  issueRefreshToken: async () => true,
  loadExistingGrant: async (ctx) => {
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope(ctx.oidc.params.scope || 'openid');
    await grant.save();
    return grant;
  },
  findAccount: async (ctx, id) => {
    const account = accounts[id];
    if (!account) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, preferred_username: id, email_verified: true, ...account }),
    };
  },
});
provider.on('server_error', (ctx, err) => console.error('server_error', err));

provider.listen(settings.port, '127.0.0.1', () => {
  console.log(`listening ${settings.issuer}`);
});
