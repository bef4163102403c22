"""The llama.cpp reference for `patois bench generate`: llama-cpp-python on the same GGUF,
the same prompt text and thread count. Prints one JSON line (median of three runs)."""
import json
import sys
import time

from llama_cpp import Llama, __version__

path, prompt_file, threads, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
text = open(prompt_file, encoding="utf-8").read()
llm = Llama(
    model_path=path,
    n_ctx=4096,
    n_threads=threads,
    n_threads_batch=threads,
    n_batch=batch,
    n_ubatch=batch,
    verbose=False,
)
ids = llm.tokenize(text.encode(), add_bos=False, special=True)
prefill, decode = [], []
for _ in range(3):
    llm.reset()
    start = time.perf_counter()
    llm.eval(ids)
    prefill.append(len(ids) / (time.perf_counter() - start))
    start = time.perf_counter()
    for _ in range(32):
        llm.eval([llm.sample(temp=0.0)])
    decode.append(32 / (time.perf_counter() - start))
prefill.sort()
decode.sort()
print(json.dumps({"version": __version__, "tokens": len(ids), "prefill": prefill[1],
                  "decode": decode[1]}))
