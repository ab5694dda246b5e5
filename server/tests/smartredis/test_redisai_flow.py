"""RedisAI 1.2.7's own flow tests (tests/flow/*.py), ported to insitu: the same commands,
the same check_error_message helper, the same expected texts. Where a flow test used a
TensorFlow or Torch model, the ONNX test models stand in (the argument checks do not
depend on the backend). Each case names the flow test it comes from.

Deliberate differences, not ported: RedisAI 1.2.7 refuses every negative value of a
signed integer type in AI.TENSORSET ... VALUES ("invalid value" for INT8 -1, a bug in its
range check); insitu accepts values in the type's range."""

import numpy as np
import onnxruntime
import pytest
import redis


def check_error_message(con, error_msg, *command):
    """RedisAI's includes.py helper: the command fails with exactly this text."""
    with pytest.raises(redis.exceptions.ResponseError) as e:
        con.execute_command(*command)
    assert str(e.value) == error_msg, command


@pytest.fixture
def con(server):
    # RedisAI's flow tests ran redis-py over RESP2.
    c = redis.Redis(host="127.0.0.1", port=server.port, protocol=2)
    c.flushall()
    yield c
    c.close()


@pytest.fixture(scope="module")
def models(models_dir):
    return models_dir


def test_common_tensorset_error_replies(con):  # tests_common.py
    con.execute_command('SET', 'non-tensor{0}', 'value')
    check_error_message(con, "WRONGTYPE Operation against a key holding the wrong kind of value",
                        'AI.TENSORSET', 'non-tensor{0}', 'INT32', 2, 'unsupported', 2, 3)
    check_error_message(con, "invalid data type", 'AI.TENSORSET', 'z{0}', 'INT128', 2, 'VALUES', 2, 3)
    check_error_message(con, "invalid or negative value found in tensor shape",
                        'AI.TENSORSET', 'z{0}', 'INT32', -1, 'VALUES', 2, 3)
    check_error_message(con, "invalid or negative value found in tensor shape",
                        'AI.TENSORSET', 'z{0}', 'INT32', 2, 'not_a_number', 'VALUES', 2, 3)
    check_error_message(con, "invalid value", 'AI.TENSORSET', 'z{0}', 'FLOAT', 2, 'VALUES', 2, 'A')
    check_error_message(con, "invalid value", 'AI.TENSORSET', 'z{0}', 'INT32', 2, 'VALUES', 2, '1.87')
    check_error_message(con, "invalid value", 'AI.TENSORSET', 'z{0}', 'BOOL', 2, 'VALUES', 1, 2)
    check_error_message(con, "C-string value contains null character",
                        'AI.TENSORSET', 'z{0}', 'STRING', 2, 'VALUES', 'valid C-string', 'invalid\0C-string')
    check_error_message(con, "invalid value", 'AI.TENSORSET', 'z{0}', 'INT8', 2, 'VALUES', 1, 128)
    check_error_message(con, "wrong number of arguments for 'AI.TENSORSET' command", 'AI.TENSORSET')
    check_error_message(con, "wrong number of arguments for 'AI.TENSORSET' command", 'AI.TENSORSET', 'z{0}')
    check_error_message(con, "wrong number of arguments for 'AI.TENSORSET' command", 'AI.TENSORSET', 'z{0}', 'FLOAT')
    check_error_message(con, "wrong number of values was given in 'AI.TENSORSET' command",
                        'AI.TENSORSET', 'z{0}', 'FLOAT', 2, 'VALUES', 1)
    check_error_message(con, "wrong number of values was given in 'AI.TENSORSET' command",
                        'AI.TENSORSET', 'z{0}', 'FLOAT', 2, 'VALUES', 1, 2, 3)
    check_error_message(con, "a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
                        'AI.TENSORSET', 'blob_tensor_more_args{0}', 'FLOAT', 2, 'BLOB', '\x00', 'extra-argument')
    check_error_message(con, "a single binary string should come after the BLOB argument in 'AI.TENSORSET' command",
                        'AI.TENSORSET', 'blob_tensor_less_args{0}', 'FLOAT', 2, 'BLOB')
    check_error_message(con, "data length does not match tensor shape and type",
                        'AI.TENSORSET', 'w{0}', 'FLOAT', 1, 1, 28, 280, 'BLOB', b'\0' * (28 * 28 * 4))
    for blob in ['single c-string\0', 'one\0two\0three\0', 'C-string\0followed by a non C-string']:
        check_error_message(con, "Number of string elements in data blob does not match tensor length",
                            'AI.TENSORSET', 'z{0}', 'STRING', 2, 'BLOB', blob)
    check_error_message(con, "BOOL tensor elements must be 0 or 1", 'AI.TENSORSET', 'z{0}', 'BOOL', 2, 'BLOB', "\x02\x01")


def test_common_tensorset_and_get_every_type(con):  # tests_common.py
    types = ["FLOAT", "DOUBLE", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "BOOL"]
    for t in types:
        assert con.execute_command('AI.TENSORSET', f'tensor_{t}{{0}}', t, 2, 'VALUES', 1, 1) == b'OK'
    for t in types:
        _, dtype, _, dims, _, blob = con.execute_command('AI.TENSORGET', f'tensor_{t}{{0}}', 'META', 'BLOB')
        assert (dtype, dims) == (t.encode(), [2])
        assert con.execute_command('AI.TENSORSET', f'tensor_blob_{t}{{0}}', t, 2, 'BLOB', blob) == b'OK'
        for fmt in ["META", "VALUES", "BLOB"]:
            assert con.execute_command('AI.TENSORGET', f'tensor_{t}{{0}}', fmt) == \
                con.execute_command('AI.TENSORGET', f'tensor_blob_{t}{{0}}', fmt)
        values = con.execute_command('AI.TENSORGET', f'tensor_{t}{{0}}', 'META', 'VALUES')[5]
        assert values == ([b'1', b'1'] if t in ("FLOAT", "DOUBLE") else [1, 1])


def test_common_tensorget_error_replies(con):  # tests_common.py
    check_error_message(con, "wrong number of arguments for 'AI.TENSORGET' command", 'AI.TENSORGET')
    check_error_message(con, "wrong number of arguments for 'AI.TENSORGET' command",
                        'AI.TENSORGET', 'T_FLOAT{0}', 'META', 'VALUES', 'extra-arg')
    check_error_message(con, "tensor key is empty or in a different shard", 'AI.TENSORGET', 'empty{0}')
    con.execute_command('SET', 'non-tensor{0}', 'value')
    check_error_message(con, "WRONGTYPE Operation against a key holding the wrong kind of value",
                        'AI.TENSORGET', 'non-tensor{0}', 'unsupported')
    con.execute_command('AI.TENSORSET', "T_FLOAT{0}", "FLOAT", 2, 'VALUES', 1, 1)
    check_error_message(con, "unsupported data format", 'AI.TENSORGET', 'T_FLOAT{0}', 'unsupported_format')
    check_error_message(con, "both BLOB and VALUES specified", 'AI.TENSORGET', 'T_FLOAT{0}', 'BLOB', 'VALUES')


def test_string_tensors(con, models):  # tests_common.py / tests_onnx.py (STRING tensors)
    assert con.execute_command('AI.TENSORSET', 's{0}', 'STRING', 2, 'VALUES', 'this is', 'the first batch') == b'OK'
    assert con.execute_command('AI.TENSORGET', 's{0}', 'VALUES') == [b'this is', b'the first batch']
    assert con.execute_command('AI.TENSORGET', 's{0}', 'BLOB') == b'this is\0the first batch\0'
    # A trailing NUL ends a C string and is not doubled.
    assert con.execute_command('AI.TENSORSET', 't{0}', 'STRING', 1, 'VALUES', 'ends\0') == b'OK'
    assert con.execute_command('AI.TENSORGET', 't{0}', 'BLOB') == b'ends\0'
    assert con.execute_command('AI.TENSORSET', 'e{0}', 'STRING', 2) == b'OK'
    assert con.execute_command('AI.TENSORGET', 'e{0}', 'VALUES') == [b'', b'']


def test_string_tensors_in_models_and_batches(server, con, models):  # tests_onnx.py (string tensors)
    """A model with STRING input and outputs, run alone, in a DAG and batched with another
    request: every string equals onnxruntime's, and the batch ran once."""
    import threading
    sess = onnxruntime.InferenceSession(str(models / "strings.onnx"))
    blob = (models / "strings.onnx").read_bytes()
    # MINBATCHSIZE 4: two requests of 2 rows run together (the timeout bounds the wait).
    assert con.execute_command('AI.MODELSTORE', 'str{0}', 'ONNX', 'CPU', 'BATCHSIZE', 4, 'MINBATCHSIZE', 4,
                               'MINBATCHTIMEOUT', 5000, 'BLOB', blob) == b'OK'
    rows = [['this is', 'the first batch'], ['and ünïcode', 'the second']]
    results = [None, None]

    def run(i):
        c = redis.Redis(host="127.0.0.1", port=server.port, protocol=2)
        c.execute_command('AI.TENSORSET', f'in{i}{{0}}', 'STRING', 2, 'VALUES', *rows[i])
        c.execute_command('AI.MODELEXECUTE', 'str{0}', 'INPUTS', 1, f'in{i}{{0}}',
                          'OUTPUTS', 2, f'same{i}{{0}}', f'upper{i}{{0}}')
        results[i] = [c.execute_command('AI.TENSORGET', f'{k}{i}{{0}}', 'VALUES') for k in ('same', 'upper')]
        c.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for i in range(2):
        want = sess.run(None, {'text': np.array(rows[i], dtype=object)})
        assert results[i] == [[v.encode() for v in w] for w in want], i
    info = con.execute_command('AI.INFO', 'str{0}')
    info = dict(zip(info[::2], info[1::2]))
    assert info[b'calls'] == 2 and info[b'runs'] == 1 and info[b'samples'] == 4, info
    # Alone (MINBATCHSIZE 1) and in a DAG, values and blob.
    assert con.execute_command('AI.MODELSTORE', 'one{0}', 'ONNX', 'CPU', 'BLOB', blob) == b'OK'
    reply = con.execute_command('AI.DAGEXECUTE', 'ROUTING', 'x{0}',
                                '|>', 'AI.TENSORSET', 't', 'STRING', 3, 'VALUES', 'a', 'Bc', '',
                                '|>', 'AI.MODELEXECUTE', 'one{0}', 'INPUTS', 1, 't', 'OUTPUTS', 2, 's', 'u',
                                '|>', 'AI.TENSORGET', 'u', 'VALUES',
                                '|>', 'AI.TENSORGET', 's', 'BLOB')
    assert reply == [b'OK', b'OK', [b'A', b'BC', b''], b'a\0Bc\0\0']


def test_modelstore_errors(con, models):  # tests_commands.py (ONNX for TORCH)
    blob = (models / "mlp.onnx").read_bytes()
    check_error_message(con, "wrong number of arguments for 'AI.MODELSTORE' command",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'BLOB', blob)
    check_error_message(con, "unsupported backend", 'AI.MODELSTORE', 'm{1}', 'PORCH', 'CPU', 'BLOB', blob)
    for dev in ['bad_device', 'CPU::', 'CPU:1.8', 'CPU:123456']:
        check_error_message(con, "Invalid DEVICE", 'AI.MODELSTORE', 'm{1}', 'TORCH', dev, 'BLOB', blob)
    check_error_message(con, "Invalid argument for BATCHSIZE",
                        'AI.MODELSTORE', 'm{1}', 'TORCH', 'CPU', 'BATCHSIZE', 'bad_size', 'BLOB', blob)
    check_error_message(con, "MINBATCHSIZE specified without BATCHSIZE",
                        'AI.MODELSTORE', 'm{1}', 'TORCH', 'CPU', 'MINBATCHSIZE', '2', 'BLOB', blob)
    check_error_message(con, "Invalid argument for MINBATCHSIZE",
                        'AI.MODELSTORE', 'm{1}', 'TORCH', 'CPU', 'BATCHSIZE', 2, 'MINBATCHSIZE', 'bad_size', 'BLOB', blob)
    check_error_message(con, "MINBATCHTIMEOUT specified without MINBATCHSIZE",
                        'AI.MODELSTORE', 'm{1}', 'TORCH', 'CPU', 'BATCHSIZE', 2, 'MINBATCHTIMEOUT', 1000, 'BLOB', blob)
    check_error_message(con, "Invalid argument for MINBATCHTIMEOUT",
                        'AI.MODELSTORE', 'm{1}', 'TORCH', 'CPU', 'BATCHSIZE', 2, 'MINBATCHSIZE', 2,
                        'MINBATCHTIMEOUT', 'bad_timeout', 'BLOB', blob)
    check_error_message(con, "INPUTS argument should not be specified for this backend",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'INPUTS', 2, 'a', 'b', 'OUTPUTS', 1, 'c', 'BLOB', blob)
    check_error_message(con, "Insufficient arguments, missing model BLOB",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2)
    check_error_message(con, "Invalid argument, expected BLOB",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, 'NOT_BLOB')
    check_error_message(con, "Insufficient arguments, missing model BLOB",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, 'BLOB')
    # tests_onnx.py: ONNX Runtime's own message for a blob that is not a model.
    check_error_message(con, "No graph was found in the protobuf.",
                        'AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BLOB', b'\x0a\x03abc')


def test_modelexecute_errors(con, models):  # tests_commands.py (two_io: 2 inputs, 2 outputs)
    blob = (models / "two_io.onnx").read_bytes()
    assert con.execute_command('AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BLOB', blob) == b'OK'
    ins = ('INPUTS', 2, 'a{1}', 'b{1}')
    check_error_message(con, "wrong number of arguments for 'AI.MODELEXECUTE' command",
                        'AI.MODELEXECUTE', 'm{1}', 'INPUTS', 2, 'a{1}', 'b{1}', 'OUTPUTS')
    check_error_message(con, "model key is empty",
                        'AI.MODELEXECUTE', 'not_exiting_model{1}', *ins, 'OUTPUTS', 1, 'c{1}')
    check_error_message(con, "INPUTS not specified",
                        'AI.MODELEXECUTE', 'm{1}', 'timeout', 1000, *ins, 'OUTPUTS', 2, 'c{1}', 'd{1}')
    check_error_message(con, "Invalid argument for input_count",
                        'AI.MODELEXECUTE', 'm{1}', 'INPUTS', 'not_a_number', 'a{1}', 'b{1}', 'OUTPUTS', 1, 'c{1}')
    check_error_message(con, "Input count must be a positive integer",
                        'AI.MODELEXECUTE', 'm{1}', 'INPUTS', 0, 'a{1}', 'b{1}', 'OUTPUTS', 1, 'c{1}')
    check_error_message(con, "Number of keys given as INPUTS here does not match model definition",
                        'AI.MODELEXECUTE', 'm{1}', 'INPUTS', 1, 'a{1}', 'OUTPUTS', 1, 'c{1}')
    check_error_message(con, "OUTPUTS not specified",
                        'AI.MODELEXECUTE', 'm{1}', *ins, 'NOT_OUTPUTS', 1, 'c{1}')
    check_error_message(con, "Invalid argument for output_count",
                        'AI.MODELEXECUTE', 'm{1}', *ins, 'OUTPUTS', 'not_a_number', 'c{1}')
    check_error_message(con, "Output count must be a positive integer",
                        'AI.MODELEXECUTE', 'm{1}', *ins, 'OUTPUTS', 0, 'c{1}')
    check_error_message(con, "Number of keys given as OUTPUTS here does not match model definition",
                        'AI.MODELEXECUTE', 'm{1}', *ins, 'OUTPUTS', 1, 'c{1}')
    check_error_message(con, "number of output keys to AI.MODELEXECUTE command does not match the number of "
                             "given arguments", 'AI.MODELEXECUTE', 'm{1}', *ins, 'OUTPUTS', 2, 'c{1}')
    outs = ('OUTPUTS', 2, 'c{1}', 'd{1}')
    check_error_message(con, "Invalid argument: bad_arg", 'AI.MODELEXECUTE', 'm{1}', *ins, *outs, 'bad_arg')
    check_error_message(con, "No value provided for TIMEOUT", 'AI.MODELEXECUTE', 'm{1}', *ins, *outs, 'TIMEOUT')
    check_error_message(con, "Invalid value for TIMEOUT", 'AI.MODELEXECUTE', 'm{1}', *ins, *outs, 'TIMEOUT', -43)
    check_error_message(con, "Invalid argument: bad_arg",
                        'AI.MODELEXECUTE', 'm{1}', *ins, *outs, 'TIMEOUT', 1000, 'bad_arg')


def test_onnx_runtime_messages_pass_through(con, models):  # tests_onnx.py
    blob = (models / "two_io.onnx").read_bytes()
    con.execute_command('AI.MODELSTORE', 'm{1}', 'ONNX', 'CPU', 'BLOB', blob)
    con.execute_command('AI.TENSORSET', 'a{1}', 'FLOAT', 3, 8)
    con.execute_command('AI.TENSORSET', 'b{1}', 'FLOAT', 2, 8)
    with pytest.raises(redis.exceptions.ResponseError) as e:
        con.execute_command('AI.MODELEXECUTE', 'm{1}', 'INPUTS', 2, 'a{1}', 'b{1}', 'OUTPUTS', 2, 'c{1}', 'd{1}')
    # ONNX Runtime's reason, on one line, as RedisAI passed it on.
    assert "Add node" in str(e.value) or "dimension" in str(e.value).lower(), str(e.value)
    assert "\n" not in str(e.value)


def test_ai_config_errors(con):  # tests_commands.py
    check_error_message(con, "wrong number of arguments for 'AI.CONFIG' command", 'AI.CONFIG')
    check_error_message(con, 'unsupported subcommand', 'AI.CONFIG', "bad_subcommand")
    check_error_message(con, "wrong number of arguments for 'AI.CONFIG' command", 'AI.CONFIG', 'LOADBACKEND')
    check_error_message(con, 'unsupported backend', 'AI.CONFIG', 'LOADBACKEND', 'bad_backend', "backends/x.so")
    check_error_message(con, "wrong number of arguments for 'AI.CONFIG' command", 'AI.CONFIG', 'LOADBACKEND', "TORCH")
    check_error_message(con, 'error loading backend', 'AI.CONFIG', 'LOADBACKEND', 'TORCH', ".")
    check_error_message(con, 'BACKENDSPATH: missing path argument', 'AI.CONFIG', 'BACKENDSPATH')
    check_error_message(con, 'MODEL_CHUNK_SIZE: missing chunk size', 'AI.CONFIG', 'MODEL_CHUNK_SIZE')
    check_error_message(con, 'MODEL_CHUNK_SIZE: invalid chunk size', 'AI.CONFIG', 'MODEL_CHUNK_SIZE', 'not_number')
    check_error_message(con, "wrong number of arguments for 'AI.CONFIG' command", 'AI.CONFIG', 'GET')
    assert con.execute_command('AI.CONFIG', 'GET', 'bad_config') is None
    assert con.execute_command('AI.CONFIG', 'LOADBACKEND', 'ONNX', 'whatever.so') == b'OK'
    assert con.execute_command('AI.CONFIG', 'BACKENDSPATH', '/usr/lib/redis/modules/backends') == b'OK'


def test_dag_load_persist_timeout_errors(con):  # tests_dag_errors.py
    check_error_message(con, "missing arguments after LOAD keyword in DAG command",
                        "AI.DAGEXECUTE PERSIST 2 no_tensor1{1} no_tensor2{1} LOAD 1")
    check_error_message(con, "invalid or negative value found in number of keys to LOAD",
                        "AI.DAGEXECUTE LOAD notnumber{1} |> AI.TENSORGET no_tensor{1} VALUES")
    con.execute_command('AI.TENSORSET', 'a{1}', 'FLOAT', 2, 2, 'VALUES', 2, 3, 2, 3)
    check_error_message(con, "number of keys to LOAD into DAG does not match the number of given arguments",
                        "AI.DAGEXECUTE ROUTING a{1} LOAD 2 a{1}")
    check_error_message(con, "tensor key is empty or in a different shard",
                        "AI.DAGEXECUTE ROUTING no_tensor{1} LOAD 1 no_tensor{1}")
    con.execute_command('SET', 'no_tensor{1}', 'value')
    check_error_message(con, "WRONGTYPE Operation against a key holding the wrong kind of value",
                        "AI.DAGEXECUTE ROUTING no_tensor{1} LOAD 1 no_tensor{1}")
    check_error_message(con, "missing arguments after PERSIST keyword in DAG command",
                        "AI.DAGEXECUTE ROUTING a{1} LOAD 1 a{1} PERSIST 1")
    check_error_message(con, "invalid or negative value found in number of keys to PERSIST",
                        "AI.DAGEXECUTE ROUTING a{1} PERSIST not_number a{1}")
    check_error_message(con, "number of keys to PERSIST after DAG execution does not match the number of given arguments",
                        "AI.DAGEXECUTE ROUTING a{1} PERSIST 2 a{1}")
    check_error_message(con, "No value provided for TIMEOUT", "AI.DAGEXECUTE ROUTING a{1} PERSIST 1 a{1} TIMEOUT")
    check_error_message(con, "Invalid value for TIMEOUT", "AI.DAGEXECUTE ROUTING a{1} PERSIST 1 a{1} TIMEOUT not_number")


def test_dag_common_and_ro_errors(con):  # tests_dag_errors.py
    check_error_message(con, "Missing ROUTING value", "AI.DAGEXECUTE PERSIST 3 a{1} b{1} c{1} ROUTING")
    check_error_message(con, "Invalid DAG command. Unexpected argument:  BAD_ARG",
                        "AI.DAGEXECUTE ROUTING a{1} PERSIST 1 a{1} BAD_ARG")
    check_error_message(con, "AI.DAGEXECUTE and AI.DAGEXECUTE_RO commands must contain at least one out of"
                             " ROUTING, LOAD, PERSIST keywords",
                        "AI.DAGEXECUTE |> AI.TENSORSET a{1} FLOAT 1 2 VALUES 5 10")
    check_error_message(con, "Unsupported command within DAG",
                        "AI.DAGEXECUTE ROUTING a{1} |> AI.NOCOMMAND a{1} FLOAT 1 2 VALUES 5 10")
    check_error_message(con, "missing arguments for 'AI.DAGEXECUTE' command", "AI.DAGEXECUTE ")
    con.execute_command("AI.TENSORSET volatile_tensor{1} FLOAT 2 2 VALUES 5 10 5 10")
    check_error_message(con, "DAG is empty", "AI.DAGEXECUTE ROUTING volatile_tensor{1} LOAD 1 volatile_tensor{1}")
    check_error_message(con, "Deprecated AI.MODELRUN cannot be used in AI.DAGEXECUTE command",
                        "AI.DAGEXECUTE LOAD 1 volatile_tensor{1} "
                        "|> AI.MODELRUN m{1} INPUTS volatile_tensor{1} volatile_tensor{1} OUTPUTS output_tensor{1}")
    check_error_message(con, "Deprecated AI.SCRIPTRUN cannot be used in AI.DAGEXECUTE command",
                        "AI.DAGEXECUTE LOAD 1 volatile_tensor{1} "
                        "|> AI.SCRIPTRUN script{1} bar INPUTS volatile_tensor{1} volatile_tensor{1} OUTPUTS output_tensor{1}")
    check_error_message(con, "missing arguments for 'AI.DAGEXECUTE_RO' command", "AI.DAGEXECUTE_RO ")
    check_error_message(con, "PERSIST cannot be specified in a read-only DAG",
                        "AI.DAGEXECUTE_RO PERSIST 1 tensor1{1} |> AI.TENSORSET tensor1{1} FLOAT 1 2 VALUES 5 10")
    check_error_message(con, "AI.SCRIPTEXECUTE command cannot be specified in a read-only DAG",
                        "AI.DAGEXECUTE_RO LOAD 1 volatile_tensor{1}"
                        " |> AI.SCRIPTEXECUTE script{1} bar INPUTS 2 volatile_tensor{1} volatile_tensor{1}")
    check_error_message(con, "wrong number of arguments for 'AI.TENSORGET' command",
                        "AI.DAGEXECUTE ROUTING a{1} |> AI.TENSORSET a{1} FLOAT 1 |> AI.TENSORGET")
    check_error_message(con, "wrong number of arguments for 'AI.TENSORGET' command",
                        "AI.DAGEXECUTE ROUTING a{1} |> AI.TENSORSET a{1} FLOAT 1 |> AI.TENSORGET a{1} META BLOB extra")
    check_error_message(con, "wrong number of arguments for 'AI.TENSORSET' command",
                        "AI.DAGEXECUTE ROUTING a{1} |> AI.TENSORSET a{1} FLOAT 1 |> AI.TENSORSET")
    check_error_message(con, "INPUT key cannot be found in DAG",
                        "AI.DAGEXECUTE ROUTING a{1} |> AI.TENSORGET nowhere{1} META")
    check_error_message(con, "PERSIST key cannot be found in DAG",
                        "AI.DAGEXECUTE PERSIST 1 never{1} |> AI.TENSORSET a{1} FLOAT 1")


def test_modelset_errors(con, models):  # tests_deprecated_commands.py (ONNX for TORCH)
    blob = (models / "mlp.onnx").read_bytes()
    check_error_message(con, "wrong number of arguments for 'AI.MODELSET' command", 'AI.MODELSET', 'm{1}', 'BLOB')
    check_error_message(con, "unsupported backend", 'AI.MODELSET', 'm{1}', 'PORCH', 'CPU', 'BLOB', blob)
    check_error_message(con, "Invalid DEVICE", 'AI.MODELSET', 'm{1}', 'TORCH', 'BLOB', blob)
    check_error_message(con, "Invalid argument for BATCHSIZE",
                        'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 'bad_size', 'BLOB', blob)
    check_error_message(con, "MINBATCHSIZE specified without BATCHSIZE",
                        'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'MINBATCHSIZE', '2', 'BLOB', blob)
    check_error_message(con, "Invalid argument for MINBATCHSIZE",
                        'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, 'MINBATCHSIZE', 'bad_size', 'BLOB', blob)
    check_error_message(con, "MINBATCHTIMEOUT specified without MINBATCHSIZE",
                        'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, 'MINBATCHTIMEOUT', 1000, 'BLOB', blob)
    check_error_message(con, "Invalid argument for MINBATCHTIMEOUT",
                        'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, 'MINBATCHSIZE', 2,
                        'MINBATCHTIMEOUT', 'bad_timeout', 'BLOB', blob)
    for tail in [(), ('NOT_BLOB',), ('BLOB',)]:
        check_error_message(con, "Insufficient arguments, missing model BLOB",
                            'AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BATCHSIZE', 2, *tail)
    check_error_message(con, "Insufficient arguments, INPUTS and OUTPUTS not specified",
                        'AI.MODELSET', 'm_1{1}', 'TF', 'CPU', 'BLOB', blob)
    check_error_message(con, "INPUTS not specified", 'AI.MODELSET', 'm_1{1}', 'TF', 'CPU', 'not_inputs', 'BLOB', blob)
    check_error_message(con, "OUTPUTS not specified", 'AI.MODELSET', 'm_1{1}', 'TF', 'CPU', 'INPUTS', 'a', 'b')
    check_error_message(con, "Insufficient arguments, missing model BLOB",
                        'AI.MODELSET', 'm_1{1}', 'TF', 'CPU', 'INPUTS', 'a', 'b', 'OUTPUTS', 'mul')


def test_modelrun_errors(con, models):  # tests_deprecated_commands.py (two_io for the TF graph)
    blob = (models / "two_io.onnx").read_bytes()
    assert con.execute_command('AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'BLOB', blob) == b'OK'
    check_error_message(con, "wrong number of arguments for 'AI.MODELRUN' command",
                        'AI.MODELRUN', 'm{1}', 'INPUTS', 'a{1}', 'OUTPUTS')
    check_error_message(con, "model key is empty",
                        'AI.MODELRUN', 'not_exiting_model{1}', 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}')
    check_error_message(con, "INPUTS not specified",
                        'AI.MODELRUN', 'm{1}', 'NOT_INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}')
    check_error_message(con, "Number of keys given as INPUTS here does not match model definition",
                        'AI.MODELRUN', 'm{1}', 'INPUTS', 'a{1}', 'OUTPUTS', 'c{1}')
    check_error_message(con, "Number of keys given as OUTPUTS here does not match model definition",
                        'AI.MODELRUN', 'm{1}', 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}')
    check_error_message(con, "Invalid value for TIMEOUT",
                        'AI.MODELRUN', 'm{1}', 'TIMEOUT', -43, 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}')
    check_error_message(con, "INPUTS not specified",
                        'AI.MODELRUN', 'm{1}', 'TIMEOUT', 1000, 'NOT_INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}')


def test_dagrun_errors(con):  # tests_deprecated_commands.py
    con.execute_command("AI.TENSORSET volatile_tensor{1} FLOAT 2 2 VALUES 5 10 5 10")
    check_error_message(con, "Invalid DAG command. Unexpected argument:  BAD_ARG",
                        "AI.DAGRUN PERSIST 1 volatile_tensor{1} BAD_ARG |> AI.TENSORGET volatile_tensor{1}")
    check_error_message(con, "Unsupported command within DAG",
                        "AI.DAGRUN LOAD 1 volatile_tensor{1} |> AI.NOCOMMAND a{1} FLOAT 1 2 VALUES 5 10")
    check_error_message(con, "wrong number of arguments for 'AI.DAGRUN' command", "AI.DAGRUN ")
    check_error_message(con, "DAG is empty", "AI.DAGRUN LOAD 1 volatile_tensor{1}")
    check_error_message(con, "AI.MODELEXECUTE cannot be used in a deprecated AI.DAGRUN command",
                        "AI.DAGRUN LOAD 1 volatile_tensor{1} |> AI.MODELEXECUTE m{1} INPUTS 1 volatile_tensor{1} "
                        "OUTPUTS 1 output_tensor{1}")
    check_error_message(con, "AI.SCRIPTEXECUTE cannot be used in a deprecated AI.DAGRUN command",
                        "AI.DAGRUN LOAD 1 volatile_tensor{1} |> AI.SCRIPTEXECUTE script{1} bar INPUTS 1 volatile_tensor{1}")
    check_error_message(con, "wrong number of arguments for 'AI.DAGRUN_RO' command", "AI.DAGRUN_RO ")
    check_error_message(con, "PERSIST cannot be specified in a read-only DAG",
                        "AI.DAGRUN_RO PERSIST 1 tensor1{1} |> AI.TENSORSET tensor1{1} FLOAT 1 2 VALUES 5 10")


def test_deprecated_commands_run_as_redisai_ran_them(con, models):  # tests_deprecated_commands.py
    path = models / "two_io.onnx"
    sess = onnxruntime.InferenceSession(str(path))
    a = np.arange(16, dtype=np.float32).reshape(2, 8) / 7
    b = np.ones((2, 8), dtype=np.float32)
    want = sess.run(None, {"a": a, "b": b})
    assert con.execute_command('AI.MODELSET', 'm{1}', 'ONNX', 'CPU', 'TAG', 'v0', 'BATCHSIZE', 4,
                               'BLOB', path.read_bytes()) == b'OK'
    assert con.execute_command('AI.MODELGET', 'm{1}', 'META')[:10] == \
        [b'backend', b'ONNX', b'device', b'CPU', b'tag', b'v0', b'batchsize', 4, b'minbatchsize', 0]
    con.execute_command('AI.TENSORSET', 'a{1}', 'FLOAT', 2, 8, 'BLOB', a.tobytes())
    con.execute_command('AI.TENSORSET', 'b{1}', 'FLOAT', 2, 8, 'BLOB', b.tobytes())
    assert con.execute_command('AI.MODELRUN', 'm{1}', 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'c{1}', 'd{1}') == b'OK'
    for key, w in zip(['c{1}', 'd{1}'], want):
        got = np.frombuffer(con.execute_command('AI.TENSORGET', key, 'BLOB'), np.float32).reshape(w.shape)
        np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)
    reply = con.execute_command(
        'AI.DAGRUN', 'LOAD', 2, 'a{1}', 'b{1}', 'PERSIST', 1, 's{1}', '|>',
        'AI.MODELRUN', 'm{1}', 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 's{1}', 'p{1}', '|>',
        'AI.TENSORGET', 'p{1}', 'BLOB')
    assert reply[0] == b'OK'
    np.testing.assert_allclose(np.frombuffer(reply[1], np.float32).reshape(want[1].shape), want[1], rtol=1e-5, atol=1e-6)
    got = np.frombuffer(con.execute_command('AI.TENSORGET', 's{1}', 'BLOB'), np.float32).reshape(want[0].shape)
    np.testing.assert_allclose(got, want[0], rtol=1e-5, atol=1e-6)
    assert con.exists('p{1}') == 0, "only PERSIST keys are stored"
    reply = con.execute_command('AI.DAGRUN_RO', 'LOAD', 1, 'a{1}', '|>', 'AI.TENSORGET', 'a{1}', 'META')
    assert reply == [[b'dtype', b'FLOAT', b'shape', [2, 8]]]
    check_error_message(con, "TIMEOUT not allowed within a DAG command",
                        'AI.DAGRUN', 'LOAD', 2, 'a{1}', 'b{1}', '|>',
                        'AI.MODELRUN', 'm{1}', 'TIMEOUT', 10, 'INPUTS', 'a{1}', 'b{1}', 'OUTPUTS', 'x{1}', 'y{1}')


def test_redisai_commands_in_a_transaction(con, models):  # tests_common.py test_lua_multi
    assert con.execute_command('MULTI') == b'OK'
    assert con.execute_command('AI.MODELEXECUTE', "no_model{1}", "INPUTS", 1, "no_input{1}",
                               "OUTPUTS", 1, "no_output{1}") == b'QUEUED'
    replies = con.execute_command('EXEC')
    assert len(replies) == 1
    assert isinstance(replies[0], redis.exceptions.ResponseError)
    assert str(replies[0]) == "Cannot run RedisAI command within a transaction or a LUA script"
    # Tensor and model commands that do not block run inside a transaction.
    blob = (models / "mlp.onnx").read_bytes()
    with con.pipeline() as p:
        p.execute_command('AI.TENSORSET', 'x{1}', 'FLOAT', 1, 16)
        p.execute_command('AI.MODELSTORE', 'mm{1}', 'ONNX', 'CPU', 'BLOB', blob)
        p.execute_command('AI.TENSORGET', 'x{1}', 'META')
        p.execute_command('AI.MODELGET', 'mm{1}', 'META')
        r = p.execute()
    assert r[0] == b'OK' and r[1] == b'OK'
    assert r[2] == [b'dtype', b'FLOAT', b'shape', [1, 16]]
    assert r[3][:4] == [b'backend', b'ONNX', b'device', b'CPU']


def test_info_modules(con):  # tests_common.py test_info_command, includes.py get_info_section
    def get_info_section(section):
        sections = ['ai_versions', 'ai_git', 'ai_load_time_configs', 'ai_backends_info', 'ai_cpu']
        section_ind = [i for i in range(len(sections)) if sections[i] == 'ai_' + section][0]
        return {k.split(":")[0]: k.split(":")[1]
                for k in con.execute_command("INFO MODULES").decode().split("#")[section_ind + 2].split()[1:]}
    assert list(get_info_section('versions').keys()) == \
        ['ai_RedisAI_version', 'ai_low_level_API_version', 'ai_rdb_version']
    assert list(get_info_section('git').keys()) == ['ai_git_sha']
    assert list(get_info_section('load_time_configs').keys()) == \
        ['ai_threads_per_queue', 'ai_inter_op_parallelism', 'ai_intra_op_parallelism',
         'ai_model_execution_timeout', 'ai_backend_memory_limit']
    cpu = get_info_section('cpu')
    for k in ['ai_self_used_cpu_sys', 'ai_self_used_cpu_user', 'ai_children_used_cpu_sys',
              'ai_children_used_cpu_user', 'ai_queue_CPU_bthread_n1_used_cpu_total']:
        assert k in cpu
