"""`tierctl render --send` (issue 16): the escalation e-mail sent over SMTP to a local
server that records what it receives — plain text and HTML parts, the evaluation sheet
attached, the recipients of [mail] — with login, with STARTTLS (a self-signed certificate
made here), and failures (refused, bad password, timeout) that leave the draft."""

from __future__ import annotations

import datetime as dt
import email
import io
import ipaddress
import socket
from email import policy
from pathlib import Path

import openpyxl
import pytest
from conftest import cli

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402
from local_smtp import LocalController  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_data" / "shortage.xlsx"
GOLDEN_CONFIG = ROOT / "tests" / "golden" / "render" / "tierctl.toml"
CLOCK = ["--as-of", "2026-11-24", "--now", "2026-11-24T09:00+08:00"]


class Recorder:
    def __init__(self) -> None:
        self.envelopes: list = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.envelopes.append(envelope)
        return "250 OK"


def closed_port() -> socket.socket:
    """A port bound but never listened on: a connection to it is refused, and no other
    test (pytest-xdist runs them side by side) can take it while the socket is open."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIERCTL_CONFIG", raising=False)
    monkeypatch.setenv("TIERCTL_DB", str(tmp_path / "t.db"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def config(env: Path, mail: str) -> Path:
    p = env / "tierctl.toml"
    p.write_text(GOLDEN_CONFIG.read_text(encoding="utf-8") + "\n[mail]\n" + mail, encoding="utf-8")
    return p


def render_send(capsys, cfg: Path) -> tuple[int, str, str]:
    return cli(capsys, "--config", str(cfg), "render", str(SAMPLE), *CLOCK, "--send")


@pytest.fixture
def server():
    rec = Recorder()
    c = LocalController(rec)
    c.start()
    yield rec, c.port
    c.stop()


def check_received(envelope, *, to: list[str], draft: Path) -> email.message.EmailMessage:
    msg = email.message_from_bytes(envelope.content, policy=policy.default)
    assert msg["Subject"] == "【紧急】上海浦东服务中心配件短缺危机 - 申请加急支援(高舆情风险)"
    assert sorted(envelope.rcpt_tos) == sorted(to)
    assert envelope.mail_from == "chen.ming@example.com"
    assert msg["X-Unsent"] is None and msg["Message-ID"]
    assert msg.get_content_type() == "multipart/mixed"
    body = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "【二、优先级说明（Priority）】" in body
    assert "<table" in html and "费用测算" in html and "合计" in html and "杜伟" in html  # a P0 customer
    att = list(msg.iter_attachments())
    assert [a.get_filename() for a in att] == ["客户分层评估表-2026-11-24.xlsx"]
    wb = openpyxl.load_workbook(io.BytesIO(att[0].get_content()))
    assert wb.sheetnames[0] == "客户分层评估表"
    # the file left in the output folder is the message as sent
    kept = email.message_from_bytes(draft.read_bytes(), policy=policy.default)
    assert kept["Message-ID"] == msg["Message-ID"] and kept["X-Unsent"] is None
    return msg


def test_send_plain_smtp_with_html_part_and_attachment(env, capsys, server):
    rec, port = server
    cfg = config(env, f'host = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
                      'from = "陈明 <chen.ming@example.com>"\nto = ["供应链 王总 <wang@example.com>"]\n'
                      'cc = ["director@example.com"]\n')
    code, _, err = render_send(capsys, cfg)
    assert code == 0, err
    assert "已发送" in err
    assert len(rec.envelopes) == 1
    msg = check_received(rec.envelopes[0], to=["wang@example.com", "director@example.com"],
                         draft=env / "out" / "2026-11-24" / "spec_email.eml")
    assert msg["To"].addresses[0].display_name == "供应链 王总"
    assert msg["Cc"].addresses[0].addr_spec == "director@example.com"


def test_html_is_autoescaped(env, capsys, server, tmp_path):
    from tierctl import render
    from tierctl.config import Config

    env_ = render.make_environment("zh").overlay(autoescape=True)
    tpl = env_.from_string("{{ x }}")
    assert tpl.render(x="<script>&") == "&lt;script&gt;&amp;"
    assert "email.html.j2" in render.TEMPLATE_NAMES and render.receives("zh/email.html.j2") == render.receives(
        "zh/email.md.j2")
    assert Config.load(GOLDEN_CONFIG)  # (the configuration the other tests send with)


def test_send_with_login_over_starttls(env, capsys, monkeypatch):
    crypto = pytest.importorskip("cryptography")
    del crypto
    import ssl

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False, decipher_only=False),
                           critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = env / "cert.pem", env / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        assert isinstance(auth_data, LoginPassword)
        logins.append((auth_data.login, auth_data.password))
        ok = auth_data.password == b"s3cret-pw"
        return AuthResult(success=ok, handled=False)  # (handled=False: the server answers 535 itself)

    rec = Recorder()
    c = LocalController(rec, tls_context=tls, require_starttls=True, authenticator=authenticator,
                        auth_required=True)
    c.start()
    port = c.port
    try:
        cfg = config(env, f'host = "127.0.0.1"\nport = {port}\nsecurity = "starttls"\nuser = "chen"\n'
                          'password_env = "TEST_SMTP_PW"\nfrom = "chen.ming@example.com"\n'
                          f'ca_file = "{cert_file}"\n')
        monkeypatch.setenv("TEST_SMTP_PW", "s3cret-pw")
        code, _, err = render_send(capsys, cfg)
        assert code == 0, err
        assert logins == [(b"chen", b"s3cret-pw")]
        check_received(rec.envelopes[0], to=["wang@example.com", "li@example.com"],  # [email] to/cc of the config
                       draft=env / "out" / "2026-11-24" / "spec_email.eml")
        # a wrong password: the server refuses, the draft stays, exit 1
        monkeypatch.setenv("TEST_SMTP_PW", "wrong")
        code, _, err = cli(capsys, "--config", str(cfg), "render", str(SAMPLE), *CLOCK, "--send", "--force")
        assert code == 1 and "登录失败" in err and "TEST_SMTP_PW" in err and "草稿已保存" in err
        assert len(rec.envelopes) == 1
        kept = email.message_from_bytes((env / "out" / "2026-11-24" / "spec_email.eml").read_bytes(),
                                        policy=policy.default)
        assert kept["X-Unsent"] == "1"
        # no CA file: the self-signed certificate is not trusted
        cfg.write_text(cfg.read_text(encoding="utf-8").replace(f'ca_file = "{cert_file}"\n', ""), encoding="utf-8")
        monkeypatch.setenv("TEST_SMTP_PW", "s3cret-pw")
        code, _, err = cli(capsys, "--config", str(cfg), "render", str(SAMPLE), *CLOCK, "--send", "--force")
        assert code == 1 and "证书" in err
    finally:
        c.stop()


def test_refused_connection_leaves_the_draft(env, capsys):
    with closed_port() as lsn:
        cfg = config(env, f'host = "127.0.0.1"\nport = {lsn.getsockname()[1]}\nsecurity = "none"\n'
                          'from = "chen.ming@example.com"\n')
        code, _, err = render_send(capsys, cfg)
    assert code == 1
    flat = " ".join(err.split())
    assert "拒绝连接" in flat and "草稿已保存" in flat
    day = env / "out" / "2026-11-24"
    draft = email.message_from_bytes((day / "spec_email.eml").read_bytes(), policy=policy.default)
    assert draft["X-Unsent"] == "1" and draft["From"].addresses[0].addr_spec == "chen.ming@example.com"
    assert (day / "spec_email.md").exists() and draft.get_body(("html",)) is not None


def test_a_server_that_never_answers_times_out(env, capsys):
    with socket.socket() as lsn:  # accepts connections (the backlog) but never greets
        lsn.bind(("127.0.0.1", 0))
        lsn.listen(1)
        port = lsn.getsockname()[1]
        cfg = config(env, f'host = "127.0.0.1"\nport = {port}\nsecurity = "none"\ntimeout = 1\n'
                          'from = "chen.ming@example.com"\n')
        code, _, err = render_send(capsys, cfg)
    assert code == 1 and "超时" in err and (env / "out" / "2026-11-24" / "spec_email.eml").exists()


@pytest.mark.parametrize("mail, words", [
    ('host = "127.0.0.1"\npassword = "abc"\n', ("mail.password", "password_env")),
    ('host = "127.0.0.1"\nsecurity = "tls"\n', ("mail.security", "starttls")),
    ('security = "none"\n', ("mail.host",)),
    ('host = "127.0.0.1"\nuser = "chen"\npassword_env = "NO_SUCH_VAR_TIERCTL"\n', ("NO_SUCH_VAR_TIERCTL",)),
    ('host = "127.0.0.1"\nfrom = "not-an-address"\n', ("mail.from",)),
])
def test_mail_settings_mistakes_stop_before_rendering(env, capsys, mail, words, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR_TIERCTL", raising=False)
    cfg = config(env, mail)
    code, _, err = render_send(capsys, cfg)
    assert code == 1
    for w in words:
        assert w in err
    assert not (env / "out").exists()  # nothing rendered
