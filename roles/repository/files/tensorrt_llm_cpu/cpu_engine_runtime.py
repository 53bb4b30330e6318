# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tritonfleet CPU reference engine's numpy runtime.

The engine format (file names, ``config.json`` layout, weight names, format
version) is defined in ``cpu_engine_format.py`` beside this file; the
repository role copies both next to ``model.py`` into the ``tensorrt_llm``
model's version directory, where Triton's Python backend imports them (the
CPU serving path never needs torch or the collection).

The runtime loads an engine directory (``config.json`` + ``rank{r}.engine``
safetensors shards), merges the tensor/pipeline-parallel shards back into
whole weights, and runs a Llama decoder (RMSNorm, rotary embeddings,
grouped-query attention with a causal mask, SwiGLU MLP) with a KV cache, so
each decoded token costs work proportional to the current length rather than
a full recompute. Correctness and determinism come first; the hot paths are
vectorised, but it is a reference, not a fast engine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
import weakref

import numpy as np

from cpu_engine_format import (  # the format, defined once
    DENSE, EMBEDDING, FINAL_NORM, INPUT_NORM, LM_HEAD, MLP_FC, MLP_GATE, MLP_PROJ, POST_NORM, QKV,
    engine_mapping, layer_weight, rank_file, read_engine_config)


class EngineLoadError(Exception):
    """The engine directory cannot be loaded; the message says what to rebuild or fix."""


class RequestError(ValueError):
    """A generation request is invalid for this engine (the server answers it with an error)."""


class KVCache:
    """Per-request key/value cache: [layer, kv_head, position, head_size] for keys and values."""

    def __init__(self, num_layers, num_kv_heads, capacity, head_size):
        self.keys = np.zeros((num_layers, num_kv_heads, capacity, head_size), np.float32)
        self.values = np.zeros_like(self.keys)
        self.length = 0

    @property
    def capacity(self):
        return self.keys.shape[2]


# TensorRT-LLM's default paged KV-cache block size (plugin_config.tokens_per_block).
DEFAULT_TOKENS_PER_BLOCK = 64


class EngineStats:
    """What the engine holds and does, in the terms of TensorRT-LLM's iteration and KV-cache statistics.

    The CPU engine keeps each sequence's keys and values in one array; the
    statistics count them as the paged cache TensorRT-LLM would use for the
    same tokens: a sequence holding ``n`` tokens occupies ``ceil(n /
    tokens_per_block)`` blocks of a pool of ``max_blocks``. An iteration is one
    run of the model (a sequence's prompt, or one generated token), as one
    step of TensorRT-LLM's batch manager. Between sequences nothing is
    scheduled and the per-iteration figures read zero. ``listener`` (a
    callable, or None) is told after every change, so a metrics reporter can
    publish as the engine runs.
    """

    def __init__(self, tokens_per_block, max_blocks, weight_bytes, clock=time.time_ns):
        self.tokens_per_block = int(tokens_per_block)
        self.max_blocks = self.default_blocks = int(max_blocks)
        self.weight_bytes = int(weight_bytes)
        self.clock = clock
        self.listener = None
        self.iterations = 0
        self.last_iteration_ns = None
        self.context_tokens = 0   # prompt tokens the latest iteration ran
        self.context_requests = 0
        self.generation_requests = 0
        self._live = {}           # cache id -> [tokens held, bytes allocated]

    def set_token_budget(self, max_tokens):
        """Size the pool from ``max_tokens_in_paged_kv_cache`` (whole blocks of it), or None for the engine's own."""
        if max_tokens is None:
            self.max_blocks = self.default_blocks
        else:
            self.max_blocks = max(int(max_tokens) // self.tokens_per_block, 0)
        self._changed()

    def blocks(self, tokens):
        return -(-int(tokens) // self.tokens_per_block)

    def track(self, cache):
        """Count ``cache`` as live until :meth:`release` (or until it is garbage collected)."""
        key = id(cache)
        self._live[key] = [cache.length, cache.keys.nbytes + cache.values.nbytes]
        cache.release = weakref.finalize(cache, self._forget, key)

    def release(self, cache):
        finalizer = getattr(cache, "release", None)
        if finalizer is not None:
            finalizer()

    def _forget(self, key):
        if self._live.pop(key, None) is not None:
            self._changed()

    def iteration(self, cache, new_tokens, context):
        """Record one run of the model over ``new_tokens`` tokens of the sequence in ``cache``."""
        entry = self._live.get(id(cache))
        if entry is not None:
            entry[0] = cache.length
        self.iterations += 1
        self.last_iteration_ns = self.clock()
        self.context_requests = 1 if context else 0
        self.generation_requests = 0 if context else 1
        self.context_tokens = int(new_tokens) if context else 0
        self._changed()

    def _changed(self):
        if self.listener is not None:
            self.listener()

    @property
    def scheduled(self):
        """Sequences the latest iteration ran (the engine decodes one at a time)."""
        return min(len(self._live), 1)

    @property
    def used_blocks(self):
        return sum(self.blocks(tokens) for tokens, _size in self._live.values())

    @property
    def cache_bytes(self):
        return sum(size for _tokens, size in self._live.values())

    def snapshot(self):
        """The figures now, as a dict (names as TensorRT-LLM's statistics call them)."""
        used = self.used_blocks
        return {
            "iterations": self.iterations,
            "timestamp_us": 0 if self.last_iteration_ns is None else self.last_iteration_ns // 1000,
            "scheduled": self.scheduled,
            "context_requests": self.context_requests if self._live else 0,
            "generation_requests": self.generation_requests if self._live else 0,
            "context_tokens": self.context_tokens if self._live else 0,
            "tokens_per_block": self.tokens_per_block,
            "max_blocks": self.max_blocks,
            "used_blocks": used,
            # Blocks beyond the pool (a budget below one sequence) are not free ones.
            "free_blocks": max(self.max_blocks - used, 0),
            "fraction": (float(used) / self.max_blocks) if self.max_blocks else 0.0,
            "cpu_bytes": self.weight_bytes + self.cache_bytes,
        }


class _Layer:
    """One decoder layer's weights, transposed so activations multiply as ``x @ w``."""

    __slots__ = ("input_norm", "qkv", "dense", "post_norm", "gate_up", "down")

    def __init__(self, input_norm, qkv, dense, post_norm, gate_up, down):
        self.input_norm = input_norm
        self.qkv = qkv
        self.dense = dense
        self.post_norm = post_norm
        self.gate_up = gate_up
        self.down = down


def _rms_norm(x, weight, eps):
    variance = np.mean(np.square(x), axis=-1, keepdims=True)
    return (x / np.sqrt(variance + eps)) * weight


def _silu(x):
    # The tanh form of the logistic function cannot overflow, unlike 1/(1+exp(-x)).
    return x * (0.5 * (1.0 + np.tanh(0.5 * x)))


def _rotate(x, cos, sin):
    """Rotary embedding in the GPT-NeoX (HF Llama "rotate_half") layout; x is [tokens, heads, head_size]."""
    half = x.shape[-1] // 2
    rotated = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos[:, None, :] + rotated * sin[:, None, :]


def _log_softmax(scores):
    scores = scores.astype(np.float64)
    shifted = scores - np.max(scores)
    return shifted - np.log(np.sum(np.exp(shifted)))


class CpuEngine:
    """A loaded CPU reference engine; one instance serves any number of sequential requests."""

    def __init__(self, config, weights):
        pretrained = config["pretrained_config"]
        build = config["build_config"]
        self.config = config
        self.vocab_size = int(pretrained["vocab_size"])
        self.hidden_size = int(pretrained["hidden_size"])
        self.num_layers = int(pretrained["num_hidden_layers"])
        self.num_heads = int(pretrained["num_attention_heads"])
        self.num_kv_heads = int(pretrained["num_key_value_heads"])
        self.head_size = int(pretrained.get("head_size") or self.hidden_size // self.num_heads)
        self.intermediate_size = int(pretrained["intermediate_size"])
        self.rms_norm_eps = np.float32(pretrained.get("rms_norm_eps", 1e-6))
        self.rope_theta = float(pretrained.get("rope_theta", 10000.0))
        self.bos_id = pretrained.get("bos_token_id")
        self.eos_id = int(pretrained["eos_token_id"])
        self.pad_id = int(pretrained.get("pad_token_id", self.eos_id))
        self.max_batch_size = int(build["max_batch_size"])
        self.max_input_len = int(build["max_input_len"])
        self.max_seq_len = int(build["max_seq_len"])
        self.max_beam_width = int(build.get("max_beam_width", 1))

        self.embedding = weights["embedding"]
        self.layers = weights["layers"]
        self.final_norm = weights["final_norm"]
        self.lm_head = weights["lm_head"]  # [hidden, vocab], padding rows already dropped

        # Rotary tables for every position the engine may see, built once.
        inv_freq = 1.0 / (self.rope_theta ** (np.arange(0, self.head_size, 2, dtype=np.float64) / self.head_size))
        angles = np.outer(np.arange(self.max_seq_len, dtype=np.float64), inv_freq)
        angles = np.concatenate([angles, angles], axis=-1)
        self._cos = np.cos(angles).astype(np.float32)
        self._sin = np.sin(angles).astype(np.float32)
        self._scale = np.float32(1.0 / np.sqrt(self.head_size))

        plugin = build.get("plugin_config") or {}
        tokens_per_block = int(plugin.get("tokens_per_block") or build.get("tokens_per_block")
                               or DEFAULT_TOKENS_PER_BLOCK)
        # Without a token budget, the pool holds max_batch_size sequences of max_seq_len tokens.
        weight_bytes = sum(array.nbytes for array in (self.embedding, self.final_norm, self.lm_head))
        weight_bytes += sum(getattr(layer, name).nbytes for layer in self.layers for name in _Layer.__slots__)
        self.stats = EngineStats(tokens_per_block,
                                 self.max_batch_size * -(-self.max_seq_len // tokens_per_block), weight_bytes)

    # ------------------------------------------------------------------ loading

    @classmethod
    def load(cls, engine_dir):
        """Read ``engine_dir``'s config.json and every rank file, and merge the shards."""
        config = read_engine_config(engine_dir, EngineLoadError)
        pretrained = config["pretrained_config"]
        tp_size, pp_size = engine_mapping(config)
        from safetensors.numpy import load_file  # imported when a model loads, not when tests import the runtime

        # TensorRT-LLM numbers ranks pp-major: rank = pp_rank * tp_size + tp_rank.
        shards = {}
        for rank in range(tp_size * pp_size):
            path = os.path.join(engine_dir, rank_file(rank))
            try:
                tensors = load_file(path)
            except Exception as exc:  # safetensors raises several types; all mean "unreadable"
                raise EngineLoadError("cannot read %s: %s; rebuild the engine" % (path, exc))
            for name, array in tensors.items():
                shards.setdefault(name, {})[rank % tp_size] = array
        return cls(config, cls._merge(shards, pretrained, tp_size, engine_dir))

    @staticmethod
    def _merge(shards, pretrained, tp_size, engine_dir):
        """Undo the tensor-parallel split; every rank's data lands in float32 whole matrices."""
        def gather(name, axis=None):
            parts = shards.get(name)
            if parts is None or sorted(parts) != list(range(tp_size)):
                raise EngineLoadError("engine %s: tensor %s is missing from some ranks (found in tp ranks %s of %d); "
                                      "rebuild the engine" % (engine_dir, name, sorted(parts or []), tp_size))
            ordered = [parts[r].astype(np.float32) for r in range(tp_size)]
            if axis is None:  # replicated on every tp rank
                return ordered[0]
            return np.concatenate(ordered, axis=axis)

        heads, kv_heads = int(pretrained["num_attention_heads"]), int(pretrained["num_key_value_heads"])
        head_size = int(pretrained.get("head_size") or int(pretrained["hidden_size"]) // heads)
        q_rows, kv_rows = heads // tp_size * head_size, kv_heads // tp_size * head_size
        layers = []
        for layer in range(int(pretrained["num_hidden_layers"])):
            qkv_parts = shards.get(layer_weight(layer, QKV), {})
            if sorted(qkv_parts) != list(range(tp_size)):
                gather(layer_weight(layer, QKV))  # raises the descriptive error
            # Each rank stacks its own q, k and v rows; regroup them per projection.
            q, k, v = [], [], []
            for r in range(tp_size):
                part = qkv_parts[r].astype(np.float32)
                q.append(part[:q_rows])
                k.append(part[q_rows:q_rows + kv_rows])
                v.append(part[q_rows + kv_rows:])
            qkv = np.concatenate(q + k + v, axis=0)
            gate = gather(layer_weight(layer, MLP_FC), axis=0)
            up = gather(layer_weight(layer, MLP_GATE), axis=0)
            layers.append(_Layer(
                input_norm=gather(layer_weight(layer, INPUT_NORM)),
                qkv=np.ascontiguousarray(qkv.T),
                dense=np.ascontiguousarray(gather(layer_weight(layer, DENSE), axis=1).T),
                post_norm=gather(layer_weight(layer, POST_NORM)),
                gate_up=np.ascontiguousarray(np.concatenate([gate, up], axis=0).T),
                down=np.ascontiguousarray(gather(layer_weight(layer, MLP_PROJ), axis=1).T),
            ))
        vocab = int(pretrained["vocab_size"])
        lm_head = gather(LM_HEAD, axis=0)[:vocab]
        return dict(
            embedding=gather(EMBEDDING),
            layers=layers,
            final_norm=gather(FINAL_NORM),
            lm_head=np.ascontiguousarray(lm_head.T),
        )

    # ------------------------------------------------------------------ model

    def new_cache(self, capacity=None):
        """An empty KV cache for one sequence of up to ``capacity`` (default max_seq_len) tokens.

        The engine's statistics count it as live until it is garbage collected
        or ``self.stats.release(cache)``.
        """
        cache = KVCache(self.num_layers, self.num_kv_heads, capacity or self.max_seq_len, self.head_size)
        self.stats.track(cache)
        return cache

    def _embed(self, ids, prompt_embedding_table):
        if prompt_embedding_table is None:
            return self.embedding[ids]
        # p-tuning: ids past the vocabulary select rows of the prompt table.
        virtual = ids >= self.vocab_size
        out = self.embedding[np.where(virtual, 0, ids)]
        if np.any(virtual):
            out[virtual] = prompt_embedding_table[ids[virtual] - self.vocab_size]
        return out

    def forward(self, token_ids, cache, prompt_embedding_table=None, all_logits=True):
        """Run ``token_ids`` (the next tokens of the sequence in ``cache``) through the model.

        Appends their keys and values to ``cache`` and returns float32 logits,
        [len(token_ids), vocab] (or [1, vocab] for the last token when
        ``all_logits`` is False).
        """
        ids = np.asarray(token_ids, dtype=np.int64).reshape(-1)
        count, start = ids.shape[0], cache.length
        end = start + count
        if end > cache.capacity:
            raise RequestError("sequence of %d tokens exceeds the KV cache (%d)" % (end, cache.capacity))
        heads, kv_heads, head_size = self.num_heads, self.num_kv_heads, self.head_size
        group = heads // kv_heads
        q_width, kv_width = heads * head_size, kv_heads * head_size
        cos, sin = self._cos[start:end], self._sin[start:end]
        mask = None
        if count > 1:
            # Query t sits at position start+t and may see keys 0..start+t.
            future = np.arange(end)[None, :] > (start + np.arange(count))[:, None]
            mask = np.where(future, np.float32(-np.inf), np.float32(0.0))

        x = self._embed(ids, prompt_embedding_table).astype(np.float32)
        for index, layer in enumerate(self.layers):
            h = _rms_norm(x, layer.input_norm, self.rms_norm_eps)
            qkv = h @ layer.qkv
            q = _rotate(qkv[:, :q_width].reshape(count, heads, head_size), cos, sin)
            k = _rotate(qkv[:, q_width:q_width + kv_width].reshape(count, kv_heads, head_size), cos, sin)
            v = qkv[:, q_width + kv_width:].reshape(count, kv_heads, head_size)
            cache.keys[index, :, start:end] = k.transpose(1, 0, 2)
            cache.values[index, :, start:end] = v.transpose(1, 0, 2)
            keys = cache.keys[index, :, :end]      # [kv_heads, seq, head_size]
            values = cache.values[index, :, :end]
            # Grouped-query attention: query head j uses kv head j // group
            # (HF's repeat_kv order), done by broadcasting instead of copying.
            queries = q.reshape(count, kv_heads, group, head_size).transpose(1, 2, 0, 3)
            scores = np.matmul(queries, keys[:, None].transpose(0, 1, 3, 2)) * self._scale
            if mask is not None:
                scores = scores + mask
            scores = np.exp(scores - np.max(scores, axis=-1, keepdims=True))
            scores /= np.sum(scores, axis=-1, keepdims=True)
            attended = np.matmul(scores, values[:, None])  # [kv_heads, group, count, head_size]
            x = x + attended.transpose(2, 0, 1, 3).reshape(count, q_width) @ layer.dense
            h = _rms_norm(x, layer.post_norm, self.rms_norm_eps)
            gate_up = h @ layer.gate_up
            x = x + (_silu(gate_up[:, :self.intermediate_size]) * gate_up[:, self.intermediate_size:]) @ layer.down
        cache.length = end
        self.stats.iteration(cache, count, context=start == 0)
        if not all_logits:
            x = x[-1:]
        return _rms_norm(x, self.final_norm, self.rms_norm_eps) @ self.lm_head

    # ------------------------------------------------------------------ generation

    def generate(self, input_ids, max_new_tokens, end_id=None, pad_id=None, temperature=1.0, top_k=1, top_p=0.0,
                 repetition_penalty=1.0, presence_penalty=0.0, min_length=1, random_seed=None, stop_words=None,
                 bad_words=None, embedding_bias=None, return_log_probs=False, prompt_embedding_table=None,
                 frequency_penalty=0.0, rng=None, details=False, context_logits=None):
        """Generate up to ``max_new_tokens`` tokens after ``input_ids``, one step at a time.

        Returns a generator of ``(token_id, log_prob)`` pairs so callers can
        stream. Arguments are checked here, before the first step, and bad
        ones raise :class:`RequestError`.

        Semantics (upstream TensorRT-LLM's where it has them):

        * ``end_id`` (default: the engine's eos) ends generation and is not
          yielded; ``min_length`` keeps it from being chosen before that many
          tokens exist. ``pad_id`` is accepted for contract parity; nothing is
          padded here.
        * Greedy when ``top_k`` is 1, when ``top_k`` is 0 and ``top_p`` is 0,
          or when ``temperature`` <= 0. Otherwise logits are divided by
          ``temperature``, cut to the ``top_k`` best (0 = all) and then to the
          smallest set with probability >= ``top_p`` (if 0 < top_p < 1), and
          sampled with ``numpy.random.default_rng(random_seed)``; the same seed
          gives the same tokens.
        * ``repetition_penalty`` divides positive (multiplies negative) logits
          of tokens already in the sequence, prompt included;
          ``presence_penalty`` is subtracted from them.
        * ``stop_words``/``bad_words`` are lists of token id sequences. A stop
          word ends generation after its last token (which is yielded); a bad
          word's last token is banned whenever the sequence ends with the rest
          of it.
        * ``embedding_bias`` (length vocab_size) is added to the logits.
        * ``log_prob`` is the log-softmax of the processed logits (penalties,
          bias, bans, temperature) at the chosen token over the whole
          vocabulary, or 0.0 when ``return_log_probs`` is False.
        * ``prompt_embedding_table`` ([rows, hidden]) serves prompt ids
          >= vocab_size (p-tuning): id vocab_size + i embeds as row i.
        * ``frequency_penalty`` is subtracted once per earlier occurrence of a
          token (prompt included, as ``presence_penalty``).
        * ``rng`` (a ``numpy.random.Generator``) replaces the one made from
          ``random_seed``: several sequences of one request draw from one
          stream, so they differ and a seed still reproduces all of them.
        * ``details`` True yields ``(token_id, log_prob, logits)`` triples;
          ``logits`` is the model's raw float32 row for that step (what
          TensorRT-LLM returns as generation logits, before penalties).
        * ``context_logits``, a list, receives the raw logits of every prompt
          position ([prompt length, vocab]) when the prompt has been run.
        """
        ids = np.asarray(input_ids)
        if ids.ndim != 1 or ids.size == 0 or ids.dtype.kind not in "iu":
            raise RequestError("input_ids must be a non-empty 1-D sequence of integer token ids")
        ids = ids.astype(np.int64)
        if ids.size > self.max_input_len:
            raise RequestError("the prompt has %d tokens but this engine was built with max_input_len %d; shorten "
                               "the prompt or rebuild the engine with a larger max_input_len"
                               % (ids.size, self.max_input_len))
        max_new_tokens = int(max_new_tokens)
        if max_new_tokens < 0:
            raise RequestError("request_output_len must not be negative (got %d)" % max_new_tokens)
        if ids.size + max_new_tokens > self.max_seq_len:
            raise RequestError("prompt (%d tokens) + request_output_len (%d) = %d exceeds this engine's max_seq_len "
                               "%d; ask for fewer tokens or rebuild the engine with a larger max_seq_len"
                               % (ids.size, max_new_tokens, ids.size + max_new_tokens, self.max_seq_len))
        table = None
        if prompt_embedding_table is not None:
            table = np.asarray(prompt_embedding_table, dtype=np.float32)
            if table.size == 0:
                table = None
            elif table.ndim != 2 or table.shape[1] != self.hidden_size:
                raise RequestError("prompt_embedding_table must be [rows, %d], got %s"
                                   % (self.hidden_size, list(table.shape)))
        limit = self.vocab_size + (0 if table is None else table.shape[0])
        if ids.min() < 0 or ids.max() >= limit:
            raise RequestError("input_ids must lie in [0, %d) (vocabulary %d%s); got ids from %d to %d"
                               % (limit, self.vocab_size, "" if table is None else
                                  " plus %d prompt-table rows" % table.shape[0], ids.min(), ids.max()))
        bias = None
        if embedding_bias is not None:
            bias = np.asarray(embedding_bias, dtype=np.float32).reshape(-1)
            if bias.size == 0 or not np.any(bias):
                bias = None  # upstream's preprocessing sends zeros when no bias was asked for
            elif bias.size != self.vocab_size:
                raise RequestError("embedding_bias has %d entries; it needs one per vocabulary entry (%d)"
                                   % (bias.size, self.vocab_size))
        if repetition_penalty is None or float(repetition_penalty) <= 0:
            raise RequestError("repetition_penalty must be positive (1.0 disables it), got %r" % repetition_penalty)
        top_k = int(top_k or 0)
        top_p = float(top_p or 0.0)
        if top_k < 0:
            raise RequestError("runtime_top_k must not be negative, got %d" % top_k)
        if not 0.0 <= top_p <= 1.0:
            raise RequestError("runtime_top_p must lie in [0, 1], got %r" % top_p)
        temperature = float(1.0 if temperature is None else temperature)
        greedy = top_k == 1 or (top_k == 0 and top_p == 0.0) or temperature <= 0.0
        settings = dict(
            end_id=self.eos_id if end_id is None else int(end_id),
            temperature=temperature, top_k=top_k, top_p=top_p, greedy=greedy,
            repetition_penalty=float(repetition_penalty), presence_penalty=float(presence_penalty or 0.0),
            frequency_penalty=float(frequency_penalty or 0.0),
            min_length=int(min_length or 0),
            rng=None if greedy else (rng if rng is not None else np.random.default_rng(random_seed)),
            details=bool(details), context_logits=context_logits,
            stop_words=_clean_word_list(stop_words, "stop_words"),
            bad_words=_clean_word_list(bad_words, "bad_words"),
            bias=bias, return_log_probs=bool(return_log_probs), table=table)
        return self._generate(ids, max_new_tokens, settings)

    def _generate(self, ids, max_new_tokens, s):
        if max_new_tokens == 0:
            return
        sequence = [int(t) for t in ids]
        counts = np.zeros(self.vocab_size, dtype=np.int64)
        np.add.at(counts, ids[ids < self.vocab_size], 1)
        present = counts > 0
        cache = self.new_cache(ids.size + max_new_tokens)
        try:
            yield from self._decode(ids, cache, max_new_tokens, sequence, counts, present, s)
        finally:
            # A generator closed early (a cancelled request) frees its blocks now, not at garbage collection.
            self.stats.release(cache)

    def _decode(self, ids, cache, max_new_tokens, sequence, counts, present, s):
        sink = s["context_logits"]
        prompt_logits = self.forward(ids, cache, s["table"], all_logits=sink is not None)
        if sink is not None:
            sink.append(prompt_logits)
        logits = prompt_logits[-1]
        for step in range(max_new_tokens):
            scores = self._process(logits, sequence, present, step, s, counts)
            if s["greedy"]:
                token = int(np.argmax(scores))
            else:
                scores = scores / np.float32(s["temperature"])
                token = _sample(scores, s["top_k"], s["top_p"], s["rng"])
            if token == s["end_id"]:
                return
            log_prob = float(_log_softmax(scores)[token]) if s["return_log_probs"] else 0.0
            if s["details"]:
                yield token, log_prob, logits
            else:
                yield token, log_prob
            sequence.append(token)
            present[token] = True
            counts[token] += 1
            if any(sequence[-len(word):] == word for word in s["stop_words"] if len(word) <= len(sequence)):
                return
            if step + 1 < max_new_tokens:
                logits = self.forward([token], cache, s["table"], all_logits=False)[0]

    def _process(self, logits, sequence, present, step, s, counts=None):
        """Apply bias, penalties, bans and min_length to one step's logits (a copy)."""
        scores = logits.astype(np.float32, copy=True)
        if s["bias"] is not None:
            scores += s["bias"]
        if s["repetition_penalty"] != 1.0 and present.any():
            seen = scores[present]
            scores[present] = np.where(seen > 0, seen / s["repetition_penalty"], seen * s["repetition_penalty"])
        if s["presence_penalty"]:
            scores[present] -= np.float32(s["presence_penalty"])
        if s.get("frequency_penalty") and counts is not None:
            scores -= np.float32(s["frequency_penalty"]) * counts.astype(np.float32)
        for word in s["bad_words"]:
            prefix = word[:-1]
            if not prefix or (len(prefix) <= len(sequence) and sequence[-len(prefix):] == prefix):
                if 0 <= word[-1] < self.vocab_size:
                    scores[word[-1]] = -np.inf
        if step < s["min_length"] and 0 <= s["end_id"] < self.vocab_size:
            scores[s["end_id"]] = -np.inf
        if not np.isfinite(np.max(scores)):
            raise RequestError("bad_words and min_length ban every token at step %d" % step)
        return scores


def _clean_word_list(words, what):
    """Normalise a list of token id sequences, dropping empty ones."""
    if words is None:
        return []
    cleaned = []
    for word in words:
        word = [int(t) for t in np.asarray(word).reshape(-1)]
        if word:
            cleaned.append(word)
    if len(cleaned) > 1024:
        raise RequestError("%s has %d entries; at most 1024 are supported" % (what, len(cleaned)))
    return cleaned


def _sample(scores, top_k, top_p, rng):
    """Draw one token from top-k / top-p filtered ``scores`` using ``rng``."""
    # A stable sort keeps ties in id order, so a seed fully determines the draw.
    order = np.argsort(-scores, kind="stable")
    if top_k > 0:
        order = order[:top_k]
    chosen = scores[order].astype(np.float64)
    probs = np.exp(chosen - chosen[0])
    probs /= probs.sum()
    if 0.0 < top_p < 1.0:
        keep = int(np.searchsorted(np.cumsum(probs), top_p, side="left")) + 1
        order, probs = order[:keep], probs[:keep] / probs[:keep].sum()
    cumulative = np.cumsum(probs)
    index = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return int(order[min(index, order.size - 1)])
