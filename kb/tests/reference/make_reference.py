#!/usr/bin/env python3
"""Reference sentence embeddings for all-MiniLM-L6-v2, computed independently of candle.

This is a from-scratch numpy implementation of the BERT encoder forward pass used by
sentence-transformers' all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, intermediate 1536,
exact-erf GELU, post-LayerNorm, eps 1e-12), followed by attention-mask mean pooling and L2
normalisation — the pipeline given by the model's `modules.json` (Transformer → Pooling(mean) →
Normalize). Sources: Devlin et al. 2018 (BERT, arXiv:1810.04805) and Hugging Face
`transformers/models/bert/modeling_bert.py` for the layer order; sentence-transformers
`models/Pooling.py` for the mean pooling.

Weights are read with `safetensors.numpy`; text is tokenised with the `tokenizers` package from
the model's own `tokenizer.json`, with truncation at 256 tokens (the model's
`max_seq_length`) and no padding (the shipped file pads and truncates at 128). All arithmetic is
done in float64 from the float32 weights, so the output is a slightly *more* exact reference than
an f32 implementation.

Usage (see README.md beside this file):
    python make_reference.py MODEL_DIR OUTPUT_JSON
"""

import json
import math
import platform
import sys
from importlib.metadata import version

import numpy as np
import tokenizers
from safetensors.numpy import load_file

MAX_TOKENS = 256

SENTENCES = [
    # Short query.
    "How do I reset my password?",
    # Paraphrase of the query (sanity check: high cosine with the first).
    "I forgot my password",
    # Unrelated (sanity check: low cosine with the first).
    "The migration patterns of arctic terns span both poles every year.",
    # Mixed case, accents and punctuation: exercises the BERT normaliser (tokenizer.json has
    # `lowercase: true, strip_accents: null`, and a null strip_accents follows lowercase).
    "Café Zürich: refunds are issued within 5–7 business days (see §3.2 of our Terms).",
    # Long help-article passage, about 200 word pieces: over the shipped tokenizer's 128-token
    # truncation, under the 256-token window.
    "To change the email address on your account, open Settings and choose Profile. Enter the "
    "new address in the Email field and select Save. We send a confirmation link to the new "
    "address; the change takes effect only after you click that link, which expires after 24 "
    "hours. If you do not receive the message within a few minutes, check your spam or junk "
    "folder, make sure the address is spelled correctly, and ask your mail administrator to "
    "allow messages from our domain. Accounts that use single sign-on (SAML or OpenID Connect) "
    "cannot change their email address here: the address is managed by your identity provider, "
    "so contact your IT department instead. If two-factor authentication is enabled, you will be "
    "asked for a verification code before the change is saved. Changing your email address "
    "does not change your username, your billing contact, or the address used for invoices; to "
    "update those, go to Billing and edit the invoice recipient. For security reasons we also "
    "send a notification to your old address.",
]
# Longer than the window: only its first 256 tokens ([CLS] + 254 word pieces + [SEP]) count.
SENTENCES.append(
    SENTENCES[-1]
    + " Enterprise workspace owners can enforce an allowed list of email domains, in which case "
    "addresses outside those domains are rejected with an error. Deleted accounts keep their "
    "address reserved for thirty days, after which it can be used to sign up again. Shared "
    "mailboxes and distribution lists are accepted, but we recommend a personal address so that "
    "password reset links reach only you. Our support team cannot change an address on your "
    "behalf without verifying your identity, which requires a reply from the current address "
    "and, for paid plans, the last four digits of the card on file."
)


def layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


_erf = np.vectorize(math.erf)


def gelu_erf(x):
    # Exact GELU as in the original BERT: x * Phi(x) = 0.5 x (1 + erf(x / sqrt 2)).
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def linear(x, w, prefix):
    # PyTorch Linear stores weight as [out, in]: y = x W^T + b.
    return x @ w[prefix + ".weight"].T + w[prefix + ".bias"]


def encode(w, config, ids, type_ids):
    """ids, type_ids: int arrays [seq]; returns last hidden state [seq, hidden] (float64)."""
    seq = len(ids)
    h = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][np.arange(seq)]
        + w["embeddings.token_type_embeddings.weight"][type_ids]
    )
    eps = config["layer_norm_eps"]
    h = layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    n_heads = config["num_attention_heads"]
    head_dim = config["hidden_size"] // n_heads
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}"
        q = linear(h, w, p + ".attention.self.query").reshape(seq, n_heads, head_dim)
        k = linear(h, w, p + ".attention.self.key").reshape(seq, n_heads, head_dim)
        v = linear(h, w, p + ".attention.self.value").reshape(seq, n_heads, head_dim)
        # No padding, so no attention mask is needed: every position attends to every position.
        scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(head_dim)
        scores = scores - scores.max(axis=-1, keepdims=True)
        probs = np.exp(scores)
        probs = probs / probs.sum(axis=-1, keepdims=True)
        context = np.einsum("hqk,khd->qhd", probs, v).reshape(seq, n_heads * head_dim)
        attn_out = linear(context, w, p + ".attention.output.dense")
        h = layer_norm(
            attn_out + h,
            w[p + ".attention.output.LayerNorm.weight"],
            w[p + ".attention.output.LayerNorm.bias"],
            eps,
        )
        inter = gelu_erf(linear(h, w, p + ".intermediate.dense"))
        out = linear(inter, w, p + ".output.dense")
        h = layer_norm(
            out + h, w[p + ".output.LayerNorm.weight"], w[p + ".output.LayerNorm.bias"], eps
        )
    return h


def embed(w, config, tokenizer, tokenizer_no_trunc, text):
    enc = tokenizer.encode(text)
    ids = np.array(enc.ids, dtype=np.int64)
    type_ids = np.array(enc.type_ids, dtype=np.int64)
    mask = np.array(enc.attention_mask, dtype=np.float64)
    hidden = encode(w, config, ids, type_ids)
    pooled = (hidden * mask[:, None]).sum(axis=0) / mask.sum()
    vector = pooled / np.linalg.norm(pooled)
    # Word pieces without [CLS]/[SEP] and without truncation (what Embedder::count_tokens means).
    n_tokens = len(tokenizer_no_trunc.encode(text, add_special_tokens=False).ids)
    return vector, n_tokens, len(ids)


def main():
    model_dir, output = sys.argv[1], sys.argv[2]
    with open(f"{model_dir}/config.json") as f:
        config = json.load(f)
    w = {k: v.astype(np.float64) for k, v in load_file(f"{model_dir}/model.safetensors").items()}

    tokenizer = tokenizers.Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=MAX_TOKENS)
    tokenizer_no_trunc = tokenizers.Tokenizer.from_file(f"{model_dir}/tokenizer.json")
    tokenizer_no_trunc.no_padding()
    tokenizer_no_trunc.no_truncation()

    results = []
    for text in SENTENCES:
        vector, n_tokens, n_model_tokens = embed(w, config, tokenizer, tokenizer_no_trunc, text)
        results.append(
            {
                "text": text,
                "n_tokens": n_tokens,
                "n_model_tokens": n_model_tokens,
                "vector": [float(x) for x in vector],
            }
        )
        print(f"{n_tokens:4d} word pieces, {n_model_tokens:4d} model tokens: {text[:60]!r}")

    # Sanity check of this implementation: a paraphrase is close, an unrelated sentence is not.
    v = [np.array(r["vector"]) for r in results]
    paraphrase, unrelated = float(v[0] @ v[1]), float(v[0] @ v[2])
    print(f"cosine(query, paraphrase) = {paraphrase:.4f}")
    print(f"cosine(query, unrelated)  = {unrelated:.4f}")
    assert paraphrase > 0.6, paraphrase
    assert unrelated < 0.2, unrelated

    command = "python make_reference.py " + " ".join(sys.argv[1:])
    document = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (mean pooling, L2-normalised, "
        f"truncation {MAX_TOKENS}, no padding)",
        "made_with": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": version("safetensors"),
        },
        "command": command,
        "sanity": {"cosine_query_paraphrase": paraphrase, "cosine_query_unrelated": unrelated},
        "sentences": results,
    }
    with open(output, "w") as f:
        json.dump(document, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
