"""UrlGuard: hostile URLs refused with a specific message, allowed ones vetted, redirects re-checked."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout

from grokvideo.errors import ArchiveError, UrlRefusedError
from grokvideo.urlguard import GuardedTarget, UrlGuard, address_problem, connection_pool, redact

PUBLIC_V4 = "104.18.32.7"
PUBLIC_V6 = "2606:4700::6812:2007"

DNS: dict[str, list[str]] = {
    "vidgen.x.ai": [PUBLIC_V4, PUBLIC_V6],
    "a.vidgen.x.ai": [PUBLIC_V4],
    "cdn.eu.vidgen.x.ai": [PUBLIC_V4],
    "mapped-public.vidgen.x.ai": ["::ffff:8.8.8.8"],
    "loop.vidgen.x.ai": ["127.0.0.1"],
    "loop6.vidgen.x.ai": ["::1"],
    "meta.vidgen.x.ai": ["169.254.169.254"],
    "ll6.vidgen.x.ai": ["fe80::1%eth0"],
    "ten.vidgen.x.ai": ["10.0.0.1"],
    "172.vidgen.x.ai": ["172.16.5.4"],
    "home.vidgen.x.ai": ["192.168.1.10"],
    "cgnat.vidgen.x.ai": ["100.64.0.1"],
    "ula.vidgen.x.ai": ["fd00::1"],
    "mapped.vidgen.x.ai": ["::ffff:10.0.0.1"],
    "mapped-loop.vidgen.x.ai": ["::ffff:127.0.0.1"],
    "compat.vidgen.x.ai": ["::10.0.0.1"],
    "nat64.vidgen.x.ai": ["64:ff9b::a00:1"],
    "sixtofour.vidgen.x.ai": ["2002:a00:1::1"],
    "sixtofour-public.vidgen.x.ai": ["2002:808:808::1"],
    "teredo.vidgen.x.ai": ["2001:0:4136:e378:8000:63bf:f5ff:fffe"],
    "zero.vidgen.x.ai": ["0.0.0.0"],
    "zero6.vidgen.x.ai": ["::"],
    "mcast.vidgen.x.ai": ["224.0.0.251"],
    "mcast6.vidgen.x.ai": ["ff02::1"],
    "reserved.vidgen.x.ai": ["240.0.0.1"],
    "doc.vidgen.x.ai": ["192.0.2.10"],
    "sitelocal.vidgen.x.ai": ["fec0::1"],
    "mixed.vidgen.x.ai": [PUBLIC_V4, "10.9.8.7"],
    "localhost": ["127.0.0.1", "::1"],
}


class FakeResolver:
    """``socket.getaddrinfo`` over a table; counts calls; unknown names fail like NXDOMAIN."""

    def __init__(self, table: Mapping[str, Sequence[str]] = DNS) -> None:
        self.table = table
        self.calls: list[str] = []

    def __call__(self, host: str, port: int, *args: object) -> list[tuple[object, ...]]:
        self.calls.append(host)
        if host not in self.table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        out: list[tuple[object, ...]] = []
        for addr in self.table[host]:
            if ":" in addr:
                out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
            else:
                out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
        return out


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver()


@pytest.fixture
def guard(resolver: FakeResolver) -> UrlGuard:
    return UrlGuard(["vidgen.x.ai"], resolver=resolver)


# --- refused before any DNS lookup --------------------------------------------------------------

HOSTILE = [
    ("http://vidgen.x.ai/v.mp4", "https only"),
    ("ftp://vidgen.x.ai/v.mp4", "https only"),
    ("file:///etc/passwd", "https only"),
    ("javascript:alert(1)", "https only"),
    ("//vidgen.x.ai/v.mp4", "https only"),
    ("vidgen.x.ai/v.mp4", "https only"),
    ("", "empty"),
    ("https://evil.com/v.mp4", "not on the allow-list"),
    ("https://vidgen.x.ai.evil.com/v.mp4", "not on the allow-list"),
    ("https://evilvidgen.x.ai/v.mp4", "not on the allow-list"),
    ("https://x.ai/v.mp4", "not on the allow-list"),
    ("https://vidgen.x.ai.:443.evil.com/", "cannot be parsed"),
    ("https://xn--vdgen-0sa.x.ai/v.mp4", "not on the allow-list"),
    ("https://vídgen.x.ai/v.mp4", "not on the allow-list"),
    ("https://127.0.0.1/v.mp4", "IP address literal 127.0.0.1"),
    ("https://10.0.0.1/v.mp4", "IP address literal 10.0.0.1"),
    ("https://169.254.169.254/latest/meta-data/", "IP address literal 169.254.169.254"),
    ("https://8.8.8.8/v.mp4", "IP address literal 8.8.8.8"),
    ("https://[::1]/v.mp4", "IP address literal ::1"),
    ("https://[::ffff:127.0.0.1]/v.mp4", "IP address literal ::ffff:"),
    ("https://[fe80::1%25eth0]/v.mp4", "IP address literal"),
    ("https://[vidgen.x.ai]/v.mp4", "cannot be parsed"),
    ("https://[1.2.3.4]/v.mp4", "cannot be parsed"),
    ("https://2130706433/v.mp4", "numeric host"),
    ("https://0x7f000001/v.mp4", "numeric host"),
    ("https://0177.0.0.1/v.mp4", "numeric host"),
    ("https://127.1/v.mp4", "numeric host"),
    ("https://017700000001/v.mp4", "numeric host"),
    ("https://vidgen.x.ai.0x7f/v.mp4", "numeric host"),
    ("https://vidgen.x.ai@evil.com/x.mp4", "userinfo"),
    ("https://user:pass@vidgen.x.ai/x.mp4", "userinfo"),
    ("https://evil.com#@vidgen.x.ai/", "not on the allow-list"),
    ("https://evil.com?@vidgen.x.ai/", "not on the allow-list"),
    ("https://evil.com\\@vidgen.x.ai/", "backslash"),
    ("https://vidgen.x.ai\\.evil.com/", "backslash"),
    ("https://vidgen.x.ai /v.mp4", "whitespace"),
    ("https://vidgen.x.ai/v.mp4\r\nX-Injected: 1", "control character"),
    ("https://vidgen.x.ai\t.evil.com/", "control character"),
    ("https://vidgen.x.ai:8443/v.mp4", "port 8443"),
    ("https://vidgen.x.ai:80/v.mp4", "port 80"),
    ("https://vidgen.x.ai:99999/v.mp4", "cannot be parsed"),
    ("https://vidgen.x.ai:abc/v.mp4", "cannot be parsed"),
    ("https:///v.mp4", "no host"),
    ("https://vidgen..x.ai/v.mp4", "not a valid"),
    ("https://vid_gen.vidgen.x.ai/v.mp4", "not a valid DNS name"),
    ("https://-bad.vidgen.x.ai/v.mp4", "not a valid DNS name"),
    ("https://vidgen.x.ai%2eevil.com/v.mp4", "not a valid DNS name"),
    ("https://vidgen.x.ai/ü.mp4", "not plain ASCII"),
    ("https://" + "a." * 130 + "vidgen.x.ai/", "not a valid DNS name"),
    ("https://vidgen.x.ai/" + "a" * 9000, "longer than"),
]


@pytest.mark.parametrize(("url", "message"), HOSTILE)
def test_hostile_url_is_refused_with_a_reason(guard: UrlGuard, resolver: FakeResolver, url: str, message: str) -> None:
    with pytest.raises(UrlRefusedError, match=None) as info:
        guard.check_url(url)
    assert message in str(info.value), str(info.value)
    assert info.value.reason == "URL_REFUSED"
    assert info.value.retryable is False
    assert resolver.calls == []  # refused on its face, no lookup


# --- refused because of where the name points ----------------------------------------------------

RESOLVES_BADLY = [
    ("loop.vidgen.x.ai", "127.0.0.1: loopback"),
    ("loop6.vidgen.x.ai", "::1: loopback"),
    ("meta.vidgen.x.ai", "169.254.169.254: link-local"),
    ("ll6.vidgen.x.ai", "fe80::1: link-local"),
    ("ten.vidgen.x.ai", "10.0.0.1: private"),
    ("172.vidgen.x.ai", "172.16.5.4: private"),
    ("home.vidgen.x.ai", "192.168.1.10: private"),
    ("cgnat.vidgen.x.ai", "100.64.0.1: carrier-grade NAT"),
    ("ula.vidgen.x.ai", "fd00::1: private"),
    ("mapped.vidgen.x.ai", "IPv4-mapped IPv6 embedding 10.0.0.1, private"),
    ("mapped-loop.vidgen.x.ai", "IPv4-mapped IPv6 embedding 127.0.0.1, loopback"),
    ("compat.vidgen.x.ai", "IPv4-compatible IPv6 embedding 10.0.0.1, private"),
    ("nat64.vidgen.x.ai", "NAT64 IPv6 embedding 10.0.0.1, private"),
    ("sixtofour.vidgen.x.ai", "6to4 IPv6 embedding 10.0.0.1, private"),
    ("sixtofour-public.vidgen.x.ai", "6to4 tunnel address"),
    ("teredo.vidgen.x.ai", "Teredo IPv6 embedding 10.0.0.1, private"),
    ("zero.vidgen.x.ai", "0.0.0.0: unspecified"),
    ("zero6.vidgen.x.ai", ":: unspecified"),
    ("mcast.vidgen.x.ai", "224.0.0.251: multicast"),
    ("mcast6.vidgen.x.ai", "ff02::1: multicast"),
    ("reserved.vidgen.x.ai", "240.0.0.1: reserved"),
    ("doc.vidgen.x.ai", "192.0.2.10: private"),
    ("sitelocal.vidgen.x.ai", "fec0::1: site-local"),
    ("mixed.vidgen.x.ai", "10.9.8.7: private"),
]


@pytest.mark.parametrize(("host", "message"), RESOLVES_BADLY)
def test_name_resolving_to_a_non_public_address_is_refused(guard: UrlGuard, host: str, message: str) -> None:
    with pytest.raises(UrlRefusedError) as info:
        guard.check_url(f"https://{host}/v.mp4?sig=secret")
    text = str(info.value)
    assert message.replace(":: unspecified", "::: unspecified") in text or message in text, text
    assert "secret" not in text


def test_dns_failure_is_retryable_not_refused(guard: UrlGuard) -> None:
    with pytest.raises(ArchiveError) as info:
        guard.check_url("https://nxdomain.vidgen.x.ai/v.mp4")
    assert not isinstance(info.value, UrlRefusedError)
    assert info.value.retryable is True
    assert info.value.reason == "TRANSFER_FAILED"


# --- allowed ------------------------------------------------------------------------------------


def test_allowed_host_resolving_to_public_addresses(guard: UrlGuard, resolver: FakeResolver) -> None:
    target = guard.check_url("https://vidgen.x.ai/xai-vid/abc.mp4?se=2026&sig=x%2By")
    assert target == GuardedTarget(
        "https", "vidgen.x.ai", 443, "/xai-vid/abc.mp4?se=2026&sig=x%2By", (PUBLIC_V4, PUBLIC_V6)
    )
    assert target.host_header == "vidgen.x.ai"
    assert target.redacted == "https://vidgen.x.ai/xai-vid/abc.mp4"
    assert resolver.calls == ["vidgen.x.ai"]


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://a.vidgen.x.ai/v.mp4", "a.vidgen.x.ai", "/v.mp4"),
        ("https://cdn.eu.vidgen.x.ai/v.mp4#frag", "cdn.eu.vidgen.x.ai", "/v.mp4"),
        ("HTTPS://VIDGEN.X.AI./v.mp4", "vidgen.x.ai", "/v.mp4"),
        ("https://vidgen.x.ai:443/v.mp4", "vidgen.x.ai", "/v.mp4"),
        ("https://vidgen.x.ai", "vidgen.x.ai", "/"),
        ("https://vidgen.x.ai?x=1", "vidgen.x.ai", "/?x=1"),
        ("https://ｖｉｄｇｅｎ.x.ai/v.mp4", "vidgen.x.ai", "/v.mp4"),  # IDNA maps fullwidth letters
        ("https://mapped-public.vidgen.x.ai/v.mp4", "mapped-public.vidgen.x.ai", "/v.mp4"),
    ],
)
def test_allowed_variants(guard: UrlGuard, url: str, host: str, path: str) -> None:
    target = guard.check_url(url)
    assert (target.host, target.port, target.path) == (host, 443, path)


def test_allow_list_entries_are_normalised() -> None:
    guard = UrlGuard([" VidGen.X.AI. ", ""], resolver=FakeResolver())
    assert guard.check_url("https://a.vidgen.x.ai/v.mp4").host == "a.vidgen.x.ai"


def test_empty_allow_list_refuses_everything() -> None:
    with pytest.raises(UrlRefusedError, match="allow-list"):
        UrlGuard([], resolver=FakeResolver()).check_url("https://vidgen.x.ai/v.mp4")


def test_ip_allow_list_entry_does_not_match_as_a_suffix() -> None:
    guard = UrlGuard(["127.0.0.1"], allow_private=True, resolver=FakeResolver({"1.127.0.0.1": ["127.0.0.1"]}))
    with pytest.raises(UrlRefusedError):
        guard.check_url("http://1.127.0.0.1:8080/v.mp4")
    with pytest.raises(UrlRefusedError):
        guard.check_url("http://x.127.0.0.1:8080/v.mp4")


# --- local-emulator mode ------------------------------------------------------------------------


def test_allow_private_accepts_http_loopback_literal_on_the_allow_list() -> None:
    resolver = FakeResolver()
    guard = UrlGuard(["127.0.0.1", "::1", "localhost"], allow_private=True, resolver=resolver)
    target = guard.check_url("http://127.0.0.1:8123/videos/r1.mp4?sig=a")
    assert target == GuardedTarget("http", "127.0.0.1", 8123, "/videos/r1.mp4?sig=a", ("127.0.0.1",))
    assert target.host_header == "127.0.0.1:8123"
    v6 = guard.check_url("http://[::1]:8123/v.mp4")
    assert (v6.host, v6.addresses, v6.host_header) == ("::1", ("::1",), "[::1]:8123")
    local = guard.check_url("http://localhost:9000/v.mp4")
    assert local.addresses == ("127.0.0.1", "::1")
    assert resolver.calls == ["localhost"]  # literals are not looked up


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://10.0.0.1:8080/v.mp4", "IP address literal 10.0.0.1"),  # literal, but not allow-listed
        ("http://evil.com:8080/v.mp4", "not on the allow-list"),
        ("ftp://127.0.0.1/v.mp4", "https only"),
        ("http://2130706433:8080/v.mp4", "numeric host"),
        ("http://0x7f000001:8080/v.mp4", "numeric host"),
        ("http://user@127.0.0.1:8080/v.mp4", "userinfo"),
    ],
)
def test_allow_private_still_applies_the_other_rules(url: str, message: str) -> None:
    guard = UrlGuard(["127.0.0.1"], allow_private=True, resolver=FakeResolver())
    with pytest.raises(UrlRefusedError, match=message):
        guard.check_url(url)


def test_allow_private_skips_the_address_checks() -> None:
    guard = UrlGuard(["vidgen.x.ai"], allow_private=True, resolver=FakeResolver())
    assert guard.check_url("https://loop.vidgen.x.ai/v.mp4").addresses == ("127.0.0.1",)


# --- redirects ----------------------------------------------------------------------------------

CURRENT = "https://vidgen.x.ai/xai-vid/a/b.mp4?sig=1"


@pytest.mark.parametrize(
    ("location", "host", "path"),
    [
        ("/other/c.mp4", "vidgen.x.ai", "/other/c.mp4"),
        ("c.mp4?sig=2", "vidgen.x.ai", "/xai-vid/a/c.mp4?sig=2"),
        ("../c.mp4", "vidgen.x.ai", "/xai-vid/c.mp4"),
        ("https://a.vidgen.x.ai/c.mp4", "a.vidgen.x.ai", "/c.mp4"),
        ("//a.vidgen.x.ai/c.mp4", "a.vidgen.x.ai", "/c.mp4"),
    ],
)
def test_redirect_kept_on_allowed_hosts(guard: UrlGuard, location: str, host: str, path: str) -> None:
    target = guard.check_redirect(CURRENT, location)
    assert (target.host, target.path) == (host, path)


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("https://loop.vidgen.x.ai/c.mp4", "loopback"),
        ("https://meta.vidgen.x.ai/latest/meta-data/", "link-local"),
        ("https://ten.vidgen.x.ai/c.mp4", "private"),
        ("https://127.0.0.1/c.mp4", "IP address literal"),
        ("https://[::ffff:a00:1]/c.mp4", "IP address literal"),
        ("//evil.com/c.mp4", "not on the allow-list"),
        ("https://vidgen.x.ai.evil.com/c.mp4", "not on the allow-list"),
        ("http://vidgen.x.ai/c.mp4", "https only"),
        ("https://vidgen.x.ai:8443/c.mp4", "port 8443"),
        ("/\\evil.com/c.mp4", "backslash"),
        ("", "without a Location"),
        ("https://vidgen.x.ai@evil.com/", "userinfo"),
    ],
)
def test_redirect_gets_every_check(guard: UrlGuard, location: str, message: str) -> None:
    with pytest.raises(UrlRefusedError, match=message):
        guard.check_redirect(CURRENT, location)


# --- address classification, redaction, pinned pools --------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", PUBLIC_V4, PUBLIC_V6, "::ffff:8.8.8.8", "64:ff9b::808:808", "1.1.1.1", "2a00:1450:4001::200e"],
)
def test_public_addresses_pass(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


def test_redact_drops_query_userinfo_and_fragment() -> None:
    assert redact("https://u:p@vidgen.x.ai:8443/a/b.mp4?sig=SECRET#x") == "https://vidgen.x.ai:8443/a/b.mp4"
    assert redact("http://[::1]:9/a.mp4?x=1") == "http://[::1]:9/a.mp4"
    assert redact("https://vidgen.x.ai:bad/a?b") == "<unparseable url>"
    assert "SECRET" not in redact("not a url ?SECRET")


def test_connection_pool_pins_the_vetted_address(guard: UrlGuard) -> None:
    target = guard.check_url("https://vidgen.x.ai/v.mp4")
    pool = connection_pool(target, PUBLIC_V4, timeout=Timeout(connect=1, read=1))
    assert isinstance(pool, HTTPSConnectionPool)
    assert pool.host == PUBLIC_V4
    assert pool.assert_hostname == "vidgen.x.ai"
    assert pool.conn_kw["server_hostname"] == "vidgen.x.ai"
    assert pool.cert_reqs == "CERT_REQUIRED"
    pool.close()
    with pytest.raises(ValueError):
        connection_pool(target, "127.0.0.1", timeout=Timeout(1))


def test_connection_pool_plain_http_in_emulator_mode() -> None:
    guard = UrlGuard(["127.0.0.1"], allow_private=True, resolver=FakeResolver())
    target = guard.check_url("http://127.0.0.1:8080/v.mp4")
    pool = connection_pool(target, "127.0.0.1", timeout=Timeout(1))
    assert type(pool) is HTTPConnectionPool
    assert (pool.host, pool.port) == ("127.0.0.1", 8080)
    pool.close()


# --- properties ---------------------------------------------------------------------------------

ALLOWED = "vidgen.x.ai"


def _independently_allowed(host: str) -> bool:
    """Would a correct guard allow this host? (Computed without the guard's code.)"""
    try:
        name = host.lower().removesuffix(".").encode("idna").decode("ascii").lower()
    except UnicodeError:
        return False
    return name == ALLOWED or name.endswith("." + ALLOWED)


# Characters that end the authority ("/?#") or start a port (":") are left out: with them the
# generated text would not be the host. "@", "\\", brackets, "%" and IDNA-mapped ones stay in.
_host_chars = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._@%[]\\ｖｉ。xX\u00ad ")
hosts = st.one_of(
    st.text(_host_chars, min_size=0, max_size=40),
    st.text(min_size=0, max_size=30).filter(lambda s: not any(c in s for c in "/?#:")),
    st.builds(lambda a, b: a + b, st.text(_host_chars, max_size=12), st.sampled_from(["vidgen.x.ai", ".x.ai"])),
    st.builds(lambda a, b: a + b, st.sampled_from(["vidgen.x.ai", "vidgen.x.ai."]), st.text(_host_chars, max_size=12)),
)


@settings(max_examples=600, deadline=None)
@given(host=hosts, scheme=st.sampled_from(["https", "http", "HTTPS", "ftp", ""]))
def test_random_hosts_outside_the_allow_list_are_always_refused(host: str, scheme: str) -> None:
    assume(not _independently_allowed(host))
    guard = UrlGuard([ALLOWED], resolver=FakeResolver({}))  # any lookup would fail loudly
    url = f"{scheme}://{host}/v.mp4"
    try:
        target = guard.check_url(url)
    except UrlRefusedError:
        return
    pytest.fail(f"accepted {url!r} as {target}")


@settings(max_examples=600, deadline=None)
@given(url=st.one_of(st.text(max_size=60), st.builds("https://{}".format, st.text(max_size=60))))
def test_any_input_either_refused_or_on_an_allowed_public_host(url: str) -> None:
    guard = UrlGuard([ALLOWED], resolver=lambda host, port, *a: [(socket.AF_INET, 1, 6, "", (PUBLIC_V4, port))])
    try:
        target = guard.check_url(url)
    except UrlRefusedError:
        return
    assert target.scheme == "https" and target.port == 443
    assert target.host == ALLOWED or target.host.endswith("." + ALLOWED)
    assert target.addresses == (PUBLIC_V4,)
    assert target.path.startswith("/") and target.path.isascii()
