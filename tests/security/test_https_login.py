"""Issue 11's "done when": a staff member logs in with password and TOTP, end to end over
HTTPS, against a whole controller: the one-time password, a new password, the TOTP enrolment
with a code from an authenticator, the session cookie (Secure, HttpOnly, SameSite=Strict)
and a state change made with it and its CSRF token."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pyotp
from certificates import make_certificates
from controllers import WITHOUT_RECORDER, controller_settings, started
from staff import ADMIN_CLI, CODES_SHOWN, CSRF_FIELD, NEW_PASSWORD, SECRET_SHOWN

PIN_SHOWN = re.compile(r"\b(\d{6})\b")


async def form(
    http: aiohttp.ClientSession, base: str, page: str, data: dict[str, str]
) -> tuple[int, str, str]:
    """Open `page`, submit its form with the CSRF token it carried: (status, location, body)."""
    async with http.get(base + page, allow_redirects=False) as opened:
        html = await opened.text()
        assert opened.status == 200, (page, opened.status)
    token = CSRF_FIELD.search(html)
    assert token is not None, html[:300]
    async with http.post(
        base + page, data={**data, "csrf_token": token[1]}, allow_redirects=False
    ) as sent:
        return sent.status, sent.headers.get("Location", ""), await sent.text()


async def test_password_and_totp_login_over_https_then_a_protected_change(
    tmp_path: Path,
) -> None:
    tls = make_certificates(tmp_path / "tls")
    settings = controller_settings(
        tmp_path,
        {
            **WITHOUT_RECORDER,
            "HOTLINE_HTTP_TLS_CERT_FILE": str(tls.cert_file),
            "HOTLINE_HTTP_TLS_KEY_FILE": str(tls.key_file),
        },
    )
    async with started(settings) as controller:
        assert controller.accounts is not None
        one_time = await controller.accounts.accounts.add(
            "ivanova", "operator", "Иванова Анна Петровна", by=ADMIN_CLI
        )
        base = f"https://localhost:{controller.http_port}"
        connector = aiohttp.TCPConnector(ssl=tls.client_context())
        async with aiohttp.ClientSession(connector=connector) as http:
            async with http.post(
                base + "/login",
                data={"account": "ivanova", "password": one_time},
                allow_redirects=False,
            ) as answer:
                assert (answer.status, answer.headers["Location"]) == (303, "/login/password")
                assert answer.headers["Strict-Transport-Security"].startswith("max-age=")
                cookie = answer.cookies.get("__Host-hotline-session")
                assert cookie is not None
                assert cookie["secure"] and cookie["httponly"]
                assert cookie["samesite"] == "Strict"
            new_password = {"new_password": NEW_PASSWORD, "new_password_again": NEW_PASSWORD}
            status, where, _ = await form(http, base, "/login/password", new_password)
            assert (status, where) == (303, "/login/enrol")
            async with http.get(base + "/login/enrol") as enrol:
                secret = SECRET_SHOWN.search(await enrol.text())
            assert secret is not None
            code = pyotp.TOTP(secret[1].replace(" ", "")).now()  # the authenticator app
            status, _, html = await form(http, base, "/login/enrol", {"code": code})
            assert status == 200 and len(CODES_SHOWN.findall(html)) == 10
            # logged in: the page of who is logged in, then a change that needs the CSRF token
            async with http.get(base + "/me") as me:
                page = await me.text()
                assert me.status == 200 and "Иванова" in page
            async with http.post(base + "/me/pin", allow_redirects=False) as forged:
                assert forged.status == 403  # no CSRF token: refused
            token = CSRF_FIELD.search(page)
            assert token is not None
            async with http.post(base + "/me/pin", data={"csrf_token": token[1]}) as pin:
                assert pin.status == 200 and PIN_SHOWN.search(await pin.text())
        # the same port refuses plain HTTP
        async with aiohttp.ClientSession() as plain:
            try:
                async with plain.get(f"http://localhost:{controller.http_port}/healthz") as r:
                    assert r.status >= 400
            except aiohttp.ClientError:
                pass
