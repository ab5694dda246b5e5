"""insitu.Server (the embedded listener), connecting, authentication, and the exception
class of every error code."""

from __future__ import annotations

import os
import socket
import stat
import threading

import numpy as np
import pytest

import insitu
from conftest import ServeProcess, free_port


def test_embedded_server_serves_this_process_engine(tmp_path, monkeypatch):
    sock = tmp_path / "srv.sock"
    local = insitu.Client("inproc", key_in=[], key_out="")
    local.put_tensor("shared", np.arange(5, dtype=np.int64))
    with insitu.Server(port=0, unix_socket=str(sock)) as srv:
        assert srv.running and srv.port > 0
        assert srv.address == f"127.0.0.1:{srv.port}"
        assert srv.unix_address == f"unix://{sock}"
        assert repr(srv) == (f"insitu.Server(address='127.0.0.1:{srv.port}', "
                             f"unix_address='unix://{sock}', running=True)")
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o700
        for addr in (srv.address, srv.unix_address):
            with insitu.Client(addr, key_in=[], key_out="") as remote:
                assert remote.get_tensor("shared").tolist() == [0, 1, 2, 3, 4]
                remote.put_tensor("back", np.ones(2, np.uint8))
        assert local.get_tensor("back").tolist() == [1, 1]
    assert not srv.running
    srv.stop()  # idempotent
    monkeypatch.setenv("INSITU_CONN_TIMEOUT", "0")  # one attempt, no waiting for a server
    with pytest.raises(insitu.Io) as e:
        insitu.Client(srv.address)
    assert str(e.value) == (f"ERR cannot connect to tcp://{srv.address}: Connection refused "
                            "(os error 111)")
    assert isinstance(e.value, OSError)


def test_server_options_and_errors(tmp_path):
    with insitu.Server(port=None, unix_socket=str(tmp_path / "m.sock"), unix_mode=0o660) as s:
        assert s.address is None and s.port is None
        assert stat.S_IMODE(os.stat(tmp_path / "m.sock").st_mode) == 0o660
    with pytest.raises(insitu.Io) as e:
        insitu.Server(port=None)
    assert str(e.value) == ("ERR cannot start the server: nothing to listen on: give a TCP "
                            "address or a Unix socket path")
    with pytest.raises(insitu.BadInput) as e:
        insitu.Server(host="localhost")
    assert str(e.value) == 'ERR host must be an IP address, not "localhost"'
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        with pytest.raises(insitu.Io) as e:
            insitu.Server(port=taken.getsockname()[1])
        assert str(e.value).startswith("ERR cannot start the server: ")
    finally:
        taken.close()


def test_bad_addresses(monkeypatch):
    with pytest.raises(insitu.BadInput) as e:
        insitu.Client("ftp://nowhere")
    assert str(e.value) == ("ERR invalid address 'ftp://nowhere': bad port (expected inproc, "
                            "host:port, tcp://host:port or unix:///path)")
    monkeypatch.setenv("INSITU_CONN_TIMEOUT", "0")
    with pytest.raises(insitu.Io) as e:
        insitu.Client(f"127.0.0.1:{free_port()}")
    assert "cannot connect" in str(e.value)
    monkeypatch.setenv("SR_CONN_TIMEOUT", "soon")
    monkeypatch.delenv("INSITU_CONN_TIMEOUT")
    with pytest.raises(insitu.BadInput) as e:
        insitu.Client(f"127.0.0.1:{free_port()}")
    assert str(e.value) == "ERR SR_CONN_TIMEOUT must be a whole number of seconds, not 'soon'"


def test_a_client_rides_out_a_server_restart(tmp_path, monkeypatch):
    """The SmartRedis variables set the budget; a put waits for the server to come back."""
    monkeypatch.setenv("SR_CMD_TIMEOUT", "3")
    monkeypatch.setenv("SR_CMD_INTERVAL", "20")
    port = free_port()
    srv = insitu.Server(port=port, unix_socket=None)
    c = insitu.Client(srv.address, key_in=[], key_out="")
    c.put_tensor("a", np.arange(4, dtype=np.int32))
    srv.stop()
    restarted = []
    t = threading.Timer(0.3, lambda: restarted.append(insitu.Server(port=port, unix_socket=None)))
    t.start()
    c.put_tensor("b", np.arange(6, dtype=np.float64))  # waits for the new server
    t.join()
    assert c.get_tensor("b").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    restarted[0].stop()
    # Gone for good: after the budget, an error that says so.
    with pytest.raises(insitu.Io) as e:
        c.get_tensor("b")
    assert str(e.value) == (
        f"ERR AI.TENSORGET failed: the server at tcp://127.0.0.1:{port} did not answer again "
        "within 3 s (INSITU_CMD_TIMEOUT); last error: cannot connect to "
        f"tcp://127.0.0.1:{port}: Connection refused (os error 111)")


def test_password_protected_server():
    srv = ServeProcess("--requirepass", "s3cret")
    try:
        c = insitu.Client(srv.tcp, key_in=[], key_out="")
        with pytest.raises(insitu.Auth) as e:
            c.put_tensor("x", np.ones(1, np.float32))
        assert str(e.value) == "NOAUTH Authentication required."
        assert isinstance(e.value, PermissionError)
        with pytest.raises(insitu.Auth) as e:
            c.auth("wrong")
        assert str(e.value).startswith("WRONGPASS")
        c.auth("s3cret")
        c.put_tensor("x", np.ones(1, np.float32))
        with insitu.Client(srv.tcp, password="s3cret") as d:
            assert d.get_tensor("x").tolist() == [1.0]
    finally:
        assert srv.stop() == 0


def test_protocol_error_from_a_peer_that_breaks_the_protocol():
    lsn = socket.socket()
    lsn.bind(("127.0.0.1", 0))
    lsn.listen()

    def peer():
        conn, _ = lsn.accept()
        conn.recv(1024)
        conn.sendall(b"+PONG\r\n")  # answers the connect's PING, then breaks the protocol
        conn.recv(1024)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
        conn.recv(1024)
        conn.close()
        conn, _ = lsn.accept()  # a peer whose error has a prefix no client knows
        conn.recv(1024)
        conn.sendall(b"+PONG\r\n")
        conn.recv(1024)
        conn.sendall(b"-WEIRD something odd happened\r\n")
        conn.recv(1024)
        conn.close()

    t = threading.Thread(target=peer)
    t.start()
    try:
        port = lsn.getsockname()[1]
        c = insitu.Client(f"127.0.0.1:{port}")
        with pytest.raises(insitu.Protocol) as e:
            c.command("PING", "again")
        assert str(e.value) == "ERR Protocol error: unexpected reply type 'H'"
        c.close()
        c = insitu.Client(f"127.0.0.1:{port}")
        with pytest.raises(insitu.ServerError) as e:
            c.command("PING", "again")
        assert str(e.value) == "WEIRD something odd happened"
        c.close()
    finally:
        t.join(5)
        lsn.close()


def test_every_code_has_its_class_and_builtin_base():
    from insitu import errors
    expected = {
        1: ("BadInput", ValueError), 2: ("NotFound", LookupError), 3: ("WrongType", TypeError),
        4: ("OutOfMemory", MemoryError), 5: ("LimitExceeded", ValueError), 6: ("Io", OSError),
        7: ("Protocol", Exception), 8: ("Auth", PermissionError), 9: ("Timeout", TimeoutError),
        10: ("Unsupported", NotImplementedError), 11: ("ServerError", Exception),
        12: ("Internal", Exception),
    }
    assert sorted(errors.CODES) == sorted(expected)
    # Every code the library has (its Rust enum) has a class.
    assert sorted(insitu._native.ERROR_CODES.values()) == sorted(expected)
    for code, (name, base) in expected.items():
        cls = getattr(insitu.errors, name)
        assert errors.CODES[code] is cls and cls.code == code
        assert issubclass(cls, insitu.Error) and issubclass(cls, base)
        e = cls("ERR something", code)
        assert str(e) == "ERR something" and e.message == "ERR something" and e.code == code


def test_admin_calls(serve):
    with insitu.Client(serve.tcp, key_in=[], key_out="") as c:
        c.flush_db()
        c.put_tensor("a", np.ones(3, np.float32))
        info = c.info()
        assert info["Server"]["tcp_port"] == str(serve.port)
        assert info["Keyspace"]["db0"].startswith("keys=1,")
        assert set(c.info("server")) == {"Server"}
        c.save()
        assert (serve.dir / "insitu.snapshot").stat().st_size > 12
        assert c.config_get("maxmemory") == {"maxmemory": "0"}
        with pytest.raises(insitu.BadInput) as e:
            c.config_set("no-such-parameter", "1")
        assert str(e.value).startswith("ERR Unknown option or number of arguments for CONFIG SET")
        assert c.shared_memory is False
    with insitu.Client(serve.unix, key_in=[], key_out="") as u:
        assert u.shared_memory is True
    with insitu.Client(serve.unix, key_in=[], key_out="", shared_memory=False) as u:
        assert u.shared_memory is False


def test_address_and_prefixes_from_the_environment(monkeypatch, serve):
    monkeypatch.delenv("SSDB", raising=False)
    monkeypatch.delenv("INSITU_ADDRESS", raising=False)
    with pytest.raises(insitu.BadInput) as e:
        insitu.Client()
    assert str(e.value) == ("ERR no server address: set SSDB or INSITU_ADDRESS (e.g. inproc, "
                            "127.0.0.1:6780 or unix:///tmp/insitu.sock)")
    monkeypatch.setenv("SSDB", serve.tcp)
    monkeypatch.setenv("SSKEYOUT", "member_3")
    monkeypatch.setenv("SSKEYIN", "member_3,member_4")
    with insitu.Client() as c:
        assert c.address == f"tcp://{serve.tcp}"
        c.put_tensor("envt", np.ones(1, np.float32))
        assert c.command("EXISTS", "member_3.envt") == 1
        assert c.get_tensor("envt").tolist() == [1.0]  # reads with the first SSKEYIN prefix
        c.set_data_source("member_4")
        assert not c.tensor_exists("envt")
