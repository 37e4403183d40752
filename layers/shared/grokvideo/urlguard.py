"""URL guard for video downloads: which URLs we fetch, and where the TCP connection really goes.

A video URL comes from the provider's answer, so it is untrusted input. ``UrlGuard.check_url``
accepts it only if:

- the scheme is ``https`` (``http`` too in local-emulator mode, see below);
- there is no userinfo (``https://vidgen.x.ai@evil.com/``), no backslash, whitespace or control
  character (parsers disagree on those: ``https://evil.com\\@vidgen.x.ai/``);
- the host is a DNS name (IDNA-encoded, lower-cased, one trailing dot dropped) equal to an
  allow-listed host or ending in ``"." + allowed`` (``a.vidgen.x.ai`` passes for ``vidgen.x.ai``;
  ``vidgen.x.ai.evil.com`` and ``evilvidgen.x.ai`` do not);
- the host is not an IP literal, bracketed IPv6, or a name that ends in a number (which resolvers
  read as IPv4: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.1``);
- the port is the scheme's default;
- every address the name resolves to is public (``address_problem``): not loopback, link-local
  (169.254/16 incl. the metadata service 169.254.169.254, fe80::/10), private (10/8, 172.16/12,
  192.168/16, fc00::/7), CGNAT 100.64/10, multicast, unspecified, reserved or otherwise
  special-purpose, with the IPv4 inside IPv4-mapped, IPv4-compatible, NAT64, 6to4 and Teredo
  IPv6 addresses checked too. One bad address refuses the whole name.

DNS rebinding: the name is resolved once, here, and the download must connect to one of the
vetted ``GuardedTarget.addresses``, never resolve the name again. ``connection_pool`` builds the
urllib3 pool that does it with public urllib3 2 options only: the pool's host is the vetted IP
(so urllib3's own ``getaddrinfo`` call is a numeric parse, not a lookup), ``server_hostname``
keeps SNI on the name, ``assert_hostname`` verifies the certificate against the name, and the
caller sends ``Host: target.host_header``. That is simpler than patching ``_new_conn`` or
urllib3's private ``_dns_host``, and certificate checking stays urllib3's.

Local-emulator mode (``allow_private=True``, stack parameter ``AllowPrivateVideoHosts``): the
fake provider serves plain ``http`` on loopback, so ``http`` is accepted, any port is accepted,
resolved addresses are not checked, and an IP literal is accepted when it is itself on the
allow-list (``127.0.0.1``). The host allow-list still applies. Never enable it in AWS.

>>> guard = UrlGuard(["vidgen.x.ai"], resolver=lambda *a: [(2, 1, 6, "", ("104.18.1.1", 443))])
>>> t = guard.check_url("https://a.vidgen.x.ai/v/1.mp4?sig=x")
>>> (t.host, t.port, t.path, t.addresses)
('a.vidgen.x.ai', 443, '/v/1.mp4?sig=x', ('104.18.1.1',))
>>> redact("https://a.vidgen.x.ai/v/1.mp4?sig=secret")
'https://a.vidgen.x.ai/v/1.mp4'
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from urllib3 import HTTPConnectionPool, HTTPSConnectionPool, Timeout

from grokvideo.errors import ArchiveError, UrlRefusedError
from grokvideo.models import ArchiveFailureReason

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

DEFAULT_PORTS = {"https": 443, "http": 80}
MAX_URL_LENGTH = 8192
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_BAD_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_V4_COMPAT = ipaddress.IPv6Network("::/96")


@dataclass(frozen=True, slots=True)
class GuardedTarget:
    """A URL that passed the guard, with the addresses that were checked (connect to these only)."""

    scheme: str
    host: str  # lower-case ASCII (IDNA), no trailing dot; an IPv6 literal has no brackets
    port: int
    path: str  # path and query exactly as sent in the request line ("/" at least)
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        """The full URL, query included: only for joining redirects, never for logs."""
        return f"{self.scheme}://{self.host_header}{self.path}"

    @property
    def redacted(self) -> str:
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` without userinfo, query and fragment (temporary URLs carry signatures there).

    Never raises: whatever cannot be parsed comes back as ``"<unparseable url>"``.
    """
    try:
        parts = urlsplit(str(url))
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
    except ValueError:
        return "<unparseable url>"
    if ":" in host:
        host = f"[{host}]"
    path = _BAD_CHARS.sub("", parts.path)[:300]
    return f"{parts.scheme}://{host}{port}{path}" if parts.scheme else path or "<unparseable url>"


def address_problem(address: IPAddress) -> str | None:
    """Why a resolved address must not be fetched from, or ``None`` when it is public."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded, kind = _embedded_ipv4(address)
        if embedded is not None:
            problem = address_problem(embedded)
            if problem:
                return f"{kind} IPv6 embedding {embedded}, {problem}"
            if kind in ("6to4", "Teredo"):
                return f"{kind} tunnel address"
            return None  # IPv4-mapped/compatible, NAT64: the packets go to the public IPv4 address
    if address.is_unspecified:
        return "unspecified address"
    if address.is_loopback:
        return "loopback address"
    if address.is_link_local:
        return "link-local address (includes the instance metadata service)"
    if address.is_multicast:
        return "multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "carrier-grade NAT address (100.64.0.0/10)"
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return "site-local address"
    if address.is_reserved:
        return "reserved address"
    if address.is_private:
        return "private address"
    if not address.is_global:
        return "non-public special-purpose address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[ipaddress.IPv4Address | None, str]:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped, "IPv4-mapped"
    if address in _V4_COMPAT and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "IPv4-compatible"
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), "NAT64"
    if address.sixtofour is not None:
        return address.sixtofour, "6to4"
    if address.teredo is not None:
        return address.teredo[1], "Teredo"
    return None, ""


def _normalise_host(raw: str) -> str:
    """Lower-case IDNA ASCII form without the trailing dot; raise ``UrlRefusedError`` if invalid."""
    host = raw.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise UrlRefusedError("URL has no host")
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            raise UrlRefusedError("host is not a valid internationalised domain name") from None
    labels = host.split(".")
    if len(host) > 253 or not all(_LABEL.fullmatch(label) for label in labels):
        raise UrlRefusedError(f"host {host[:80]!r} is not a valid DNS name")
    return host


def _ends_in_number(host: str) -> bool:
    """WHATWG URL rule: a host whose last label is numeric is parsed as IPv4 (``127.1``, ``0x7f``)."""
    last = host.rsplit(".", 1)[-1]
    return last.isdigit() or (last[:2] == "0x" and all(c in "0123456789abcdef" for c in last[2:]))


class UrlGuard:
    """Decides whether a video URL (or a redirect hop) may be fetched; see the module docstring."""

    def __init__(
        self,
        allowed_hosts: Sequence[str],
        *,
        allow_private: bool = False,
        resolver: Resolver = socket.getaddrinfo,
    ) -> None:
        self.allow_private = allow_private
        self._resolver = resolver
        self._allowed_names: list[str] = []
        self._allowed_ips: set[IPAddress] = set()
        for entry in allowed_hosts:
            entry = entry.strip().strip("[]")
            if not entry:
                continue
            try:
                self._allowed_ips.add(ipaddress.ip_address(entry))
            except ValueError:
                self._allowed_names.append(_normalise_host(entry))

    def check_url(self, url: str) -> GuardedTarget:
        """Return the vetted target of ``url`` or raise ``UrlRefusedError`` saying why.

        A DNS failure for an allowed name raises a retryable ``ArchiveError`` (TRANSFER_FAILED).
        """
        if not isinstance(url, str) or not url:
            raise UrlRefusedError("URL is empty")
        if len(url) > MAX_URL_LENGTH:
            raise UrlRefusedError(f"URL is longer than {MAX_URL_LENGTH} characters")
        if _BAD_CHARS.search(url):
            raise UrlRefusedError("URL contains whitespace, a control character or a backslash")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefusedError(f"URL cannot be parsed safely: {redact(url)}") from None
        scheme = parts.scheme.lower()
        if scheme != "https" and not (self.allow_private and scheme == "http"):
            raise UrlRefusedError(f"scheme {scheme[:16]!r} refused: https only")
        if "@" in parts.netloc:
            raise UrlRefusedError("URL carries userinfo (user@host): refused")
        raw_host = parts.hostname or ""
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if not path.isascii() or not path.startswith("/"):
            raise UrlRefusedError("URL path is not plain ASCII")
        effective_port = port if port is not None else DEFAULT_PORTS[scheme]
        if effective_port != DEFAULT_PORTS[scheme] and not self.allow_private:
            raise UrlRefusedError(f"port {effective_port} refused: only the default {scheme} port")

        literal = self._ip_literal(raw_host, bracketed=parts.netloc.startswith("["))
        if literal is not None:
            return GuardedTarget(scheme, str(literal), effective_port, path, (str(literal),))
        host = _normalise_host(raw_host)
        if _ends_in_number(host):
            raise UrlRefusedError(f"numeric host {host[:80]!r} refused (an IPv4 address in another form)")
        if not any(host == allowed or host.endswith("." + allowed) for allowed in self._allowed_names):
            raise UrlRefusedError(f"host {host[:80]!r} is not on the allow-list")
        addresses = self._resolve(host, effective_port)
        return GuardedTarget(scheme, host, effective_port, path, addresses)

    def check_redirect(self, current_url: str, location: str) -> GuardedTarget:
        """Vet a redirect: ``location`` (absolute or relative to ``current_url``) gets every check."""
        if not isinstance(location, str) or not location.strip():
            raise UrlRefusedError("redirect without a Location")
        if _BAD_CHARS.search(location):
            raise UrlRefusedError("redirect Location contains whitespace, a control character or a backslash")
        try:
            target = urljoin(current_url, location)
        except ValueError:
            raise UrlRefusedError("redirect Location cannot be parsed safely") from None
        return self.check_url(target)

    def _ip_literal(self, raw_host: str, *, bracketed: bool) -> IPAddress | None:
        """The literal address, when the host is one and may be used; raise when it may not."""
        try:
            address = ipaddress.ip_address(raw_host)
        except ValueError:
            if bracketed:
                raise UrlRefusedError("bracketed host is not a valid IPv6 address") from None
            return None
        if self.allow_private and address in self._allowed_ips:
            return address
        raise UrlRefusedError(f"IP address literal {address} refused: a DNS name on the allow-list is required")

    def _resolve(self, host: str, port: int) -> tuple[str, ...]:
        try:
            infos = self._resolver(host, port, 0, socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise ArchiveError(
                f"cannot resolve {host}: {type(exc).__name__}", reason=ArchiveFailureReason.TRANSFER_FAILED
            ) from None
        addresses: list[str] = []
        for family, _type, _proto, _canon, sockaddr in infos:
            if family not in (socket.AF_INET, socket.AF_INET6):
                continue
            text = str(sockaddr[0]).split("%", 1)[0]
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                raise UrlRefusedError(f"{host} resolved to something that is not an address") from None
            problem = None if self.allow_private else address_problem(address)
            if problem:
                raise UrlRefusedError(f"{host} resolves to {address}: {problem}, refused")
            if str(address) not in addresses:
                addresses.append(str(address))
        if not addresses:
            raise ArchiveError(f"{host} resolved to no address", reason=ArchiveFailureReason.TRANSFER_FAILED)
        return tuple(addresses)


def connection_pool(
    target: GuardedTarget,
    address: str,
    *,
    timeout: Timeout,
    ca_certs: str | None = None,
) -> HTTPConnectionPool:
    """A one-connection urllib3 pool that connects to the vetted ``address`` of ``target``.

    TLS still names and verifies ``target.host`` (SNI and certificate). Send
    ``headers={"Host": target.host_header}`` with each request, and close the pool afterwards.
    """
    if address not in target.addresses:
        raise ValueError("address was not vetted for this target")
    if target.scheme == "https":
        return HTTPSConnectionPool(
            address,
            target.port,
            timeout=timeout,
            maxsize=1,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            ca_certs=ca_certs,
            assert_hostname=target.host,
            server_hostname=target.host,
        )
    return HTTPConnectionPool(address, target.port, timeout=timeout, maxsize=1, retries=False)
