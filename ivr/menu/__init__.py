"""The menu language and its engine: what a caller hears and presses on each hotline number.

* `loader`: a menu file (``dialplans/<number>.yaml``, schema in ``dialplans/schema.json``)
  read with its line numbers into a `model.Menu`; every mistake as ``file:line: sentence``.
* `validate`: the checks beyond syntax (targets, reachability, loops with no exit, prompts,
  opening-hours references); `lint` runs them all for ``hotline menus lint``.
* `engine`: runs one call through one menu over a `model.Channel` (an `AgiSession` in
  production, `console.ConsoleChannel` for ``hotline menus try``), never looping forever.
* `library`: every menu of the dialplans directory with the services its nodes use.
* `status`, `history`: the application-status service (HTTP) and the call log as nodes see them.

The node kinds themselves live in `ivr.nodes`, one module per kind.
"""
