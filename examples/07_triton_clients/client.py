"""Example 07's client side: Triton's own clients (tritonclient, gRPC and HTTP) run the
heat-step surrogate served by insitu, with data sent inline, through system shared
memory, and by naming a tensor a simulation stored over RESP (SmartRedis); the results
are checked against the stencil computed with numpy, and /metrics counts the requests.

    python client.py RESP_PORT GRPC_PORT HTTP_PORT METRICS_PORT
"""
import os
import sys
import time
import urllib.request

import grpc
import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import tritonclient.utils.shared_memory as shm
from smartredis import Client
from tritonclient.grpc import service_pb2, service_pb2_grpc

resp, gport, hport, mport = sys.argv[1:5]
alpha = 0.2


def heat_step(u):
    """u + alpha * laplacian(u), zero outside: what the ONNX surrogate computes."""
    p = np.pad(u, ((0, 0), (0, 0), (1, 1), (1, 1)))
    lap = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:] - 4 * u
    return u + alpha * lap


g = grpcclient.InferenceServerClient(f"127.0.0.1:{gport}")
deadline = time.time() + 30
while True:
    try:
        if g.is_model_ready("heat"):
            break
    except Exception:
        pass
    assert time.time() < deadline, "the server did not load the model"
    time.sleep(0.05)
print("model metadata:", g.get_model_metadata("heat", as_json=True)["inputs"])

u = np.zeros((1, 1, 32, 32), dtype=np.float32)
u[0, 0, 12:20, 12:20] = 1.0
want = heat_step(u)

# 1. gRPC, data inline.
x = grpcclient.InferInput("u", list(u.shape), "FP32")
x.set_data_from_numpy(u)
got = g.infer("heat", [x]).as_numpy("u_next")
assert np.allclose(got, want, atol=1e-6), "gRPC result differs from the stencil"
print("gRPC infer: OK")

# 2. HTTP, input and output in system shared memory.
h = httpclient.InferenceServerClient(f"127.0.0.1:{hport}")
key = f"/insitu_example07_{os.getpid()}"
region = shm.create_shared_memory_region("ex07", key, 2 * u.nbytes)
try:
    shm.set_shared_memory_region(region, [u])
    h.register_system_shared_memory("ex07", key, 2 * u.nbytes)
    x = httpclient.InferInput("u", list(u.shape), "FP32")
    x.set_shared_memory("ex07", u.nbytes)
    y = httpclient.InferRequestedOutput("u_next")
    y.set_shared_memory("ex07", u.nbytes, offset=u.nbytes)
    h.infer("heat", [x], outputs=[y])
    got = shm.get_contents_as_numpy(region, np.float32, list(u.shape), offset=u.nbytes)
    assert np.allclose(got, want, atol=1e-6), "shared-memory result differs from the stencil"
    h.unregister_system_shared_memory("ex07")
finally:
    shm.destroy_shared_memory_region(region)
print("HTTP infer through system shared memory: OK")

# 3. A simulation (here SmartRedis) stores the field over RESP; a gRPC request names it
#    (parameter tensor_key) and stores the result under a key the simulation reads.
sim = Client(address=f"127.0.0.1:{resp}", cluster=False)
sim.put_tensor("field_step_41", u)
stub = service_pb2_grpc.GRPCInferenceServiceStub(grpc.insecure_channel(f"127.0.0.1:{gport}"))
req = service_pb2.ModelInferRequest(model_name="heat")
req.inputs.add(name="u").parameters["tensor_key"].string_param = "field_step_41"
req.outputs.add(name="u_next").parameters["tensor_key"].string_param = "field_step_42"
stub.ModelInfer(req)
assert np.allclose(sim.get_tensor("field_step_42"), want, atol=1e-6)
print("RESP tensor in, gRPC inference, RESP tensor out: OK")

metrics = urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=10).read().decode()
line = next(ln for ln in metrics.splitlines() if ln.startswith('nv_inference_request_success{model="heat"'))
assert line.endswith(" 3"), line
print("metrics:", line)
print("example 07: Triton's clients ran the surrogate over gRPC, HTTP and shared memory: OK")
