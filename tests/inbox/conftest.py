"""A private dovecot on loopback for the IMAP tests, and PO e-mails for a generated network.

The server is Debian's dovecot (``dovecot-imapd``), started once per test worker from a config
written into a temporary directory (plain IMAP on a free port, a passwd-file with one user per
test, Maildir storage). When dovecot is missing and cannot be installed, the IMAP tests skip —
except under CI (``CI=true``), where they fail, so that "skipped" never passes for "passed".
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
from imap_tools import MailBoxUnencrypted
from imap_tools.mailbox import BaseMailBox

from api.inbox.imap import ImapConfig
from core.db import Database
from intake.documents import DocumentStore
from intake.pipeline import IntakeDeps
from intake.samples import GoldLine, GoldOrder, load_catalog, render
from tests.tools.conftest import Net, build_net

PASSWORD = "secret-pw"
USERS = 64


def _fail_or_skip(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"dovecot is required under CI: {reason}")
    pytest.skip(reason)


def _ensure_dovecot() -> str | None:
    """The dovecot binary, installing Debian's package when missing and allowed (root, apt)."""
    found = shutil.which("dovecot") or (os.path.exists("/usr/sbin/dovecot") and "/usr/sbin/dovecot") or None
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "install", "-y", "-q", "dovecot-imapd"], env=env, check=False,
                           capture_output=True, timeout=600)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
    return shutil.which("dovecot") or (os.path.exists("/usr/sbin/dovecot") and "/usr/sbin/dovecot") or None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Dovecot:
    root: Path
    port: int
    passwd: Path
    uid: int
    gid: int
    proc: subprocess.Popen[bytes]

    users: list[str]

    def add_user(self) -> str:
        """A fresh, empty mailbox for one test (users are written up front: dovecot does not
        notice a passwd-file that changes within the same second)."""
        return self.users.pop()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _config(root: Path, port: int, run_as: str | None) -> str:
    users = f"default_internal_user = {run_as}\ndefault_login_user = {run_as}\n" if run_as else ""
    return f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
{users}passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    binary = _ensure_dovecot()
    if binary is None:
        _fail_or_skip("dovecot is not installed and `apt-get install -y dovecot-imapd` was not possible")
    assert binary is not None
    # Not under pytest's tmp dir: its parents are private to us, and the mail processes run as the
    # (unprivileged) mail user, which must reach the Maildirs.
    root = Path(tempfile.mkdtemp(prefix="orderops-dovecot-"))
    root.chmod(0o755)
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        uid, gid, run_as = nobody.pw_uid, nobody.pw_gid, None  # dovecot refuses mail access as uid 0
    else:
        uid, gid, run_as = os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name
    for d in ("run", "state", "mail", "home"):
        (root / d).mkdir()
    for d in ("mail", "home"):
        os.chown(root / d, uid, gid)
    passwd = root / "passwd"
    users = [f"u{k:03d}" for k in range(USERS)]
    lines = []
    for user in users:
        home = root / "home" / user
        home.mkdir()
        os.chown(home, uid, gid)
        lines.append(f"{user}:{{PLAIN}}{PASSWORD}:{uid}:{gid}::{home}::\n")
    passwd.write_text("".join(lines))
    port = _free_port()
    conf = root / "dovecot.conf"
    conf.write_text(_config(root, port, run_as))
    with (root / "stderr.log").open("wb") as err_log:
        proc = subprocess.Popen([binary, "-F", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=err_log)
    server = Dovecot(root=root, port=port, passwd=passwd, uid=uid, gid=gid, proc=proc, users=users)
    try:
        for _ in range(100):
            if proc.poll() is not None:
                err = (root / "stderr.log").read_text(errors="replace")
                _fail_or_skip(f"dovecot exited with {proc.returncode}: {err} {server.log()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            _fail_or_skip(f"dovecot did not listen on 127.0.0.1:{port}: {server.log()}")
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_cfg(dovecot: Dovecot) -> ImapConfig:
    return ImapConfig(host="127.0.0.1", port=dovecot.port, user=dovecot.add_user(), password=PASSWORD, ssl=False)


@pytest.fixture
def imap_box(imap_cfg: ImapConfig) -> Iterator[BaseMailBox]:
    """A second client, the sender's side: appends mail, looks at the folders."""
    box = MailBoxUnencrypted("127.0.0.1", imap_cfg.resolved_port).login(imap_cfg.user, PASSWORD)
    try:
        yield box
    finally:
        box.logout()


# --- a network and its purchase orders by e-mail ------------------------------------------------


@dataclass
class Shop:
    net: Net
    store: DocumentStore
    deps: IntakeDeps

    def po_email(self, n: int, *, attachment: str = "pdf", message_id: str | None = None) -> tuple[bytes, str]:
        """An e-mail from a customer with PO ``PO-77<n>`` attached as a PDF (or CSV) file, at
        contract prices; returns the bytes and the PO number."""
        catalog = load_catalog(self.net.db, max_skus=40)
        cust = next(c for c in catalog.customers if c.addresses and len(c.prices) >= 2)
        skus = [s for s in catalog.skus if s in cust.prices][:2]
        po = f"PO-77{n:04d}"
        gold = GoldOrder(
            doc_id=f"mail-{n}", format=attachment, customer_id=cust.id, sender=cust.email, po_number=po,
            po_date=catalog.business_date, ship_to_address_id=cust.addresses[0].id,
            lines=[GoldLine(sku=s, quantity=k + 2, unit_price=cust.prices[s], expected_price=cust.prices[s])
                   for k, s in enumerate(skus)],
        )  # fmt: skip
        data, name, media = render(gold, catalog, random.Random(n), n)
        m = EmailMessage()
        m["From"] = cust.email
        m["To"] = "orders@orderops.example"
        m["Subject"] = f"Purchase order {po}"
        m["Message-ID"] = message_id or f"<po-{n}-{uuid.uuid4().hex[:8]}@customer.example>"
        m.set_content("Hello,\n\nPlease find our purchase order attached.\n\nRegards\n")
        maintype, subtype = media.split("/", 1)
        m.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
        return bytes(m), po


def build_shop(db: Database, tmp_path: Path) -> Shop:
    net = build_net(db)
    store = DocumentStore(db, net.clock, tmp_path / "docs")
    return Shop(net=net, store=store, deps=IntakeDeps(db=db, clock=net.clock, documents=store, gateway=net.gateway))


@pytest.fixture
def shop(sqlite_db: Database, tmp_path: Path) -> Shop:
    return build_shop(sqlite_db, tmp_path)
