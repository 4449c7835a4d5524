"""Staff accounts and service keys: who may use the hotline's web and API, and how they prove it.

A core package (it imports no part): the composition root builds it from the ``[accounts]``
settings (`build_accounts`), mounts its pages (`install_accounts`) and gives its
`AccountsLookup` to `hotline.access.access_middleware`.

* `service`: accounts (argon2id passwords, mandatory TOTP with recovery codes, the phone PIN);
* `sessions`: server-side sessions behind an HttpOnly, SameSite=Strict (and Secure) cookie;
* `throttle`: back-off per account and per address, with no lock an attacker could use;
* `keys`: the systems' service keys (scoped, expiring, revocable);
* `lookup`: request -> `hotline.auth.Actor` (session, service key, or the legacy token file);
* `web`: the Russian login pages, ``/logout`` and ``/me``;
* `secrets`: hashes, random tokens and the box sealing TOTP secrets under a key file;
* `settings`: the ``[accounts]`` section (light: the settings loader imports it).

Nothing is imported here, so reading the settings does not load the web and database stack.
"""
