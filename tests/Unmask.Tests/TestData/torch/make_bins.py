# Writes the PyTorch checkpoints the .bin tests read (run with python3-torch 1.13; the files are committed).
import json, struct, collections, torch

def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    data = raw[8 + n:]
    out = collections.OrderedDict()
    for name, e in header.items():
        if name == '__metadata__': continue
        assert e['dtype'] == 'F32'
        b, end = e['data_offsets']
        out[name] = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e['shape']).clone()
    return out

models = '/work/shared/fixtures/hf-reference/models/'

# RoBERTa as transformers 4.31 torch.save()s it: tied names present (sharing the embedding's storage) and the
# position_ids buffer (int64).
sd = read_safetensors(models + 'roberta/model.safetensors')
sd['lm_head.decoder.weight'] = sd['roberta.embeddings.word_embeddings.weight']
sd['lm_head.decoder.bias'] = sd['lm_head.bias']
sd['roberta.embeddings.position_ids'] = torch.arange(66).expand((1, -1))
torch.save(sd, 'roberta-pytorch_model.bin')

# bert-cased in float16, split into two shards with an index, as save_pretrained(max_shard_size=...) does.
sd = read_safetensors(models + 'bert-cased/model.safetensors')
names = sorted(sd)
half = len(names) // 2
weight_map = {}
for i, part in enumerate([names[:half], names[half:]]):
    file = f'pytorch_model-{i + 1:05d}-of-00002.bin'
    torch.save(collections.OrderedDict((n, sd[n].half()) for n in part), 'bert-cased-fp16-' + file)
    weight_map.update({n: file for n in part})
json.dump({'metadata': {'total_size': 0}, 'weight_map': weight_map}, open('bert-cased-fp16-pytorch_model.bin.index.json', 'w'), indent=2)

# Layouts: a transposed view, a view at a storage offset, two views of one storage, fp16, bf16, a Parameter.
base = torch.arange(12, dtype=torch.float32)
layouts = collections.OrderedDict()
layouts['transposed'] = base.reshape(3, 4).t()
layouts['offset'] = base[3:7]
layouts['strided'] = base[1::3]
layouts['half'] = torch.tensor([1.5, -2.25, 65504.0], dtype=torch.float16)
layouts['bf16'] = torch.tensor([[1.0, -3.5], [0.0078125, 256.0]], dtype=torch.bfloat16).t()
layouts['param'] = torch.nn.Parameter(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
layouts['scalar'] = torch.tensor(7.25)
torch.save(layouts, 'layouts.bin')
