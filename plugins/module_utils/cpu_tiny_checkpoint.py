# -*- coding: utf-8 -*-
# Copyright: (c) 2026, tritonfleet maintainers
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The tiny test checkpoint of the CPU reference engine.

:func:`generate_tiny_checkpoint` writes a tiny Hugging Face format,
Llama-style checkpoint with random weights from a fixed seed and a real
byte-level BPE tokenizer, so a host without GPU or network has a model to
serve. The same arguments always give byte-identical files, so every host of
a fleet derives the same engine cache key.

numpy, safetensors and tokenizers are needed only when it runs (see
``cpu_reference.py`` for why the import must work without them).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import math
import os
import shutil
import tempfile

try:
    import numpy as np
except ImportError:  # pragma: no cover - require_numpy() says what to install
    np = None

# Inside Ansible these are module_utils of the collection; run as a script or
# copied beside its siblings (the molecule build image), plain imports find them.
try:
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_engine_format import (
        ARCHITECTURE, FORMAT_VERSION)
    from ansible_collections.tritonfleet.serving.plugins.module_utils.cpu_reference import (
        CheckpointError, import_optional, positive_int, require_numpy, save_safetensors, umask, write_json)
    from ansible_collections.tritonfleet.serving.plugins.module_utils.hashing import file_sha256
except ImportError:
    from cpu_engine_format import ARCHITECTURE, FORMAT_VERSION
    from cpu_reference import (
        CheckpointError, import_optional, positive_int, require_numpy, save_safetensors, umask, write_json)
    from hashing import file_sha256

# Special tokens of the tiny tokenizer, in id order (Llama's ids for unk/bos/eos).
UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN = "<unk>", "<s>", "</s>", "<pad>"
SPECIAL_TOKENS = (UNK_TOKEN, BOS_TOKEN, EOS_TOKEN, PAD_TOKEN)
# The trainer stops earlier when the corpus runs out of pairs seen twice; the
# actual size is whatever training reaches, and is deterministic.
TOKENIZER_TARGET_VOCAB = 1024

# Training text for the tiny tokenizer: plain, varied English written for this
# project, so common words become single tokens and prompts tokenize sensibly.
TINY_CORPUS = """\
The morning train left the station a few minutes after seven, and the platform emptied quickly.
A small dog waited by the bakery door, hoping that someone would drop a piece of warm bread.
Rain had fallen all night, so the streets were shining and the gutters ran like little rivers.
She opened the window, listened to the birds, and decided that the day would be a good one.
Our team builds servers that answer questions, and every answer must arrive quickly and correctly.
When a request comes in, the server reads the prompt, turns the words into numbers, and runs the model.
The model predicts one token at a time; each new token is added to the text and the loop continues.
If the answer is long, the client can stream it, reading every piece as soon as it is ready.
Good engineers measure before they change anything, and they write tests that prove the change works.
A fleet of machines is only healthy when each machine reports that it is live and ready.
The garden behind the house has tomatoes, beans, onions, carrots, and a row of tall sunflowers.
In the autumn the leaves turn red and gold, and the children collect them on the way to school.
He read the old letter twice, folded it carefully, and placed it back inside the wooden box.
Numbers such as one, two, three, four, five, six, seven, eight, nine, and ten are easy to learn.
The river flows north through the valley, past the mill, under the stone bridge, and into the lake.
Please check the configuration file, restart the service, and then look at the logs for errors.
Cooking rice is simple: rinse the grains, add water, bring it to a boil, and let it rest covered.
The library opens at nine in the morning and closes at six in the evening, except on Sundays.
Mountains in the distance were covered with snow, although the valley below was green and warm.
Every version of the model lives in its own directory, so an update never breaks the running one.
The teacher asked a simple question, and the whole class answered together in a loud voice.
A careful plan names the goal, the steps, the risks, and the way to know when the work is done.
Coffee, tea, water, and juice were served on a long table beside the window of the hall.
The ship sailed at dawn, and by noon the coast was only a thin grey line behind it.
Light travels faster than sound, which is why we see the lightning before we hear the thunder.
They walked along the beach, counting shells, talking about books, and watching the waves roll in.
When the power failed, the old server kept running on its battery long enough to shut down safely.
Write clear names, keep functions short, and explain in comments why the code does what it does.
The market was busy with people buying apples, pears, cheese, fish, flowers, and fresh bread.
At night the city is quiet, the lamps are bright, and only a few cars move through the streets.
A question that is well asked is already half answered, as the old saying goes.
The cat slept in the sun on the kitchen floor while the soup cooked slowly on the stove.
Building an engine takes time, so the result is stored and reused whenever the inputs are the same.
Hello, world! How are you today? I am fine, thank you, and I hope that you are well too.
What is the capital of France? Paris is the capital of France, and it sits on the river Seine.
The quick brown fox jumps over the lazy dog near the bank of the river.
My grandmother kept a notebook of recipes, and every page smelled faintly of cinnamon and butter.
Traffic on the highway slowed to a crawl because a truck had lost part of its load.
Scientists watched the comet for weeks, writing down its position every night at the same hour.
The hospital needs nurses, doctors, cleaners, and cooks, and all of them work long shifts.
After the storm, neighbours helped each other clear branches from the roads and repair the fences.
A good map shows the roads, the rivers, the hills, and the towns, with a scale in the corner.
Students often ask why history matters; the answer is that the past explains much of the present.
The orchestra tuned its instruments, the lights went down, and the concert hall became silent.
Fresh snow makes the forest very quiet, as if the whole world were holding its breath.
Her first computer was slow and loud, but it taught her how programs and memory really work.
We planted a young oak tree near the gate, hoping our grandchildren would sit in its shade.
The price of bread went up again this year, and many families changed what they buy each week.
A bridge must carry its own weight, the weight of the traffic, and the force of the wind.
On Monday the office was crowded, but by Friday most people were working from home.
The museum has paintings, statues, old coins, maps of the world, and a room full of clocks.
If you want to learn a language, speak it every day, even when you make mistakes.
The farmer checked the sky, saw dark clouds in the west, and hurried to bring in the hay.
Good documentation tells you what a tool does, how to use it, and what to do when it fails.
The baby laughed at the bubbles, reaching for each one until it popped in the air.
Our village has one shop, one school, two churches, and a small harbour full of boats.
Monitoring shows the latency of each request, the number of errors, and the memory in use.
A long walk after dinner helps you sleep, especially when the evening air is cool and clear.
"""

# --------------------------------------------------------------------------- tiny checkpoint


def _train_tokenizer():
    """Train the tiny byte-level BPE tokenizer on :data:`TINY_CORPUS`.

    The trainer of the ``tokenizers`` library breaks ties between equally
    frequent pairs deterministically, so the result depends on the corpus only
    (the unit tests hold it to that).
    """
    tokenizers = import_optional("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers, processors, trainers

    tokenizer = tokenizers.Tokenizer(models.BPE(unk_token=UNK_TOKEN))
    # add_prefix_space=False so decode(encode(text)) gives back text exactly.
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=TOKENIZER_TARGET_VOCAB,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        # Every byte is in the vocabulary, so any text (any language, emoji)
        # encodes without <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(TINY_CORPUS.splitlines(), trainer)
    bos_id = tokenizer.token_to_id(BOS_TOKEN)
    # Llama tokenizers start every sequence with <s>; the engine expects it.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="%s $A" % BOS_TOKEN, pair="%s $A %s $B" % (BOS_TOKEN, BOS_TOKEN),
        special_tokens=[(BOS_TOKEN, bos_id)])
    return tokenizer


def _tiny_weights(seed, dims):
    """Random Llama weights with HF names, scaled so activations stay near unit size.

    Projections use std 1/sqrt(fan_in) (unit-variance outputs for unit inputs);
    norm weights sit near 1 with some spread so a runtime that ignored them
    would be caught by tests; lm_head is scaled for logits of std ~2, peaked
    enough that greedy decoding is not decided by rounding noise.
    """
    rng = np.random.default_rng(seed)
    hidden, inter, vocab = dims["hidden_size"], dims["intermediate_size"], dims["vocab_size"]
    head_size = hidden // dims["num_attention_heads"]
    q_rows = dims["num_attention_heads"] * head_size
    kv_rows = dims["num_key_value_heads"] * head_size

    def normal(shape, std):
        return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)

    def norm_weight():
        return np.float32(1.0) + normal((hidden,), 0.1)

    # Insertion order fixes the order of draws from rng, hence the bytes.
    tensors = {"model.embed_tokens.weight": normal((vocab, hidden), 1.0)}
    for layer in range(dims["num_hidden_layers"]):
        prefix = "model.layers.%d." % layer
        tensors[prefix + "input_layernorm.weight"] = norm_weight()
        tensors[prefix + "self_attn.q_proj.weight"] = normal((q_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.k_proj.weight"] = normal((kv_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.v_proj.weight"] = normal((kv_rows, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "self_attn.o_proj.weight"] = normal((hidden, q_rows), 1.0 / math.sqrt(q_rows))
        tensors[prefix + "post_attention_layernorm.weight"] = norm_weight()
        tensors[prefix + "mlp.gate_proj.weight"] = normal((inter, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "mlp.up_proj.weight"] = normal((inter, hidden), 1.0 / math.sqrt(hidden))
        tensors[prefix + "mlp.down_proj.weight"] = normal((hidden, inter), 1.0 / math.sqrt(inter))
    tensors["model.norm.weight"] = norm_weight()
    tensors["lm_head.weight"] = normal((vocab, hidden), 2.0 / math.sqrt(hidden))
    return tensors


def _swap_into_place(staging, output_dir):
    """Rename ``staging`` to ``output_dir``, replacing an existing directory.

    The old directory is renamed aside first and removed only after the new
    one is in place, so an interrupted run leaves either version whole.
    """
    if os.path.lexists(output_dir):
        retired = tempfile.mkdtemp(prefix=".%s.old-" % os.path.basename(output_dir),
                                   dir=os.path.dirname(output_dir))
        os.rmdir(retired)
        os.rename(output_dir, retired)
        try:
            os.rename(staging, output_dir)
        except OSError:
            os.rename(retired, output_dir)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    else:
        os.rename(staging, output_dir)


def generate_tiny_checkpoint(output_dir, seed=0, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                             num_key_value_heads=2, intermediate_size=128, max_position_embeddings=1024,
                             vocab_size=None):
    """Write a tiny random Llama-style checkpoint in Hugging Face format to ``output_dir``.

    The directory gets ``config.json``, ``generation_config.json``,
    ``model.safetensors`` (float32 weights drawn from ``numpy.random.default_rng(seed)``)
    and a byte-level BPE tokenizer (``tokenizer.json``, ``tokenizer_config.json``,
    ``special_tokens_map.json``) that ``transformers.AutoTokenizer`` loads offline.

    ``vocab_size`` defaults to the tokenizer's size; a larger value pads the
    embedding with rows no token maps to (as real checkpoints often do), a
    smaller one is refused.

    Files are written into a temporary directory beside ``output_dir`` and
    renamed into place. If ``output_dir`` already holds byte-identical files
    it is left untouched (``changed`` is False in the result); files that are
    not part of the checkpoint (markers written by callers) are then kept.

    Returns a summary dict: ``path``, ``changed``, ``seed``, the model sizes,
    ``num_parameters``, ``files`` (name -> sha256), ``digest`` (sha256 over
    the files) and ``format_version``.
    """
    require_numpy()
    import_optional("safetensors.numpy")  # fail before the slow work, not after it
    hidden_size = positive_int(hidden_size, "hidden_size", CheckpointError)
    num_hidden_layers = positive_int(num_hidden_layers, "num_hidden_layers", CheckpointError)
    num_attention_heads = positive_int(num_attention_heads, "num_attention_heads", CheckpointError)
    num_key_value_heads = positive_int(num_key_value_heads, "num_key_value_heads", CheckpointError)
    intermediate_size = positive_int(intermediate_size, "intermediate_size", CheckpointError)
    max_position_embeddings = positive_int(max_position_embeddings, "max_position_embeddings", CheckpointError)
    if isinstance(seed, str) and seed.strip().isdigit():
        seed = int(seed)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise CheckpointError("seed must be a non-negative integer, got %r" % (seed,))
    if hidden_size % num_attention_heads:
        raise CheckpointError("hidden_size %d is not divisible by num_attention_heads %d"
                              % (hidden_size, num_attention_heads))
    if num_attention_heads % num_key_value_heads:
        raise CheckpointError("num_attention_heads %d is not a multiple of num_key_value_heads %d"
                              % (num_attention_heads, num_key_value_heads))
    if (hidden_size // num_attention_heads) % 2:
        raise CheckpointError("the head size (hidden_size / num_attention_heads = %d) must be even for rotary "
                              "embeddings" % (hidden_size // num_attention_heads))

    tokenizer = _train_tokenizer()
    tokenizer_vocab = tokenizer.get_vocab_size()
    vocab_size = positive_int(tokenizer_vocab if vocab_size is None else vocab_size, "vocab_size", CheckpointError)
    if vocab_size < tokenizer_vocab:
        raise CheckpointError("vocab_size %d is smaller than the tokenizer's %d tokens; leave it unset or raise it"
                              % (vocab_size, tokenizer_vocab))
    ids = {token: tokenizer.token_to_id(token) for token in SPECIAL_TOKENS}

    dims = dict(hidden_size=hidden_size, num_hidden_layers=num_hidden_layers,
                num_attention_heads=num_attention_heads, num_key_value_heads=num_key_value_heads,
                intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
                vocab_size=vocab_size)
    config = dict(dims)
    config.update(
        architectures=[ARCHITECTURE], model_type="llama", hidden_act="silu",
        head_dim=hidden_size // num_attention_heads, rms_norm_eps=1e-5, rope_theta=10000.0, rope_scaling=None,
        attention_bias=False, attention_dropout=0.0, mlp_bias=False, pretraining_tp=1,
        initializer_range=0.02, tie_word_embeddings=False, use_cache=True, torch_dtype="float32",
        bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN],
        tritonfleet_tiny_checkpoint={"seed": seed, "format_version": FORMAT_VERSION},
    )
    generation_config = dict(bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN],
                             pad_token_id=ids[PAD_TOKEN], do_sample=False, max_length=max_position_embeddings)
    tokenizer_config = dict(
        tokenizer_class="PreTrainedTokenizerFast", bos_token=BOS_TOKEN, eos_token=EOS_TOKEN,
        unk_token=UNK_TOKEN, pad_token=PAD_TOKEN, model_max_length=max_position_embeddings,
        add_bos_token=True, add_eos_token=False, clean_up_tokenization_spaces=False, padding_side="left",
    )
    special_tokens_map = dict(bos_token=BOS_TOKEN, eos_token=EOS_TOKEN, unk_token=UNK_TOKEN, pad_token=PAD_TOKEN)
    tensors = _tiny_weights(seed, dims)

    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        staging = tempfile.mkdtemp(prefix=".%s.tmp-" % os.path.basename(output_dir), dir=parent)
    except OSError as exc:
        raise CheckpointError("cannot create a staging directory beside %s: %s" % (output_dir, exc))
    try:
        write_json(os.path.join(staging, "config.json"), config)
        write_json(os.path.join(staging, "generation_config.json"), generation_config)
        save_safetensors(tensors, os.path.join(staging, "model.safetensors"), metadata={"format": "pt"})
        with open(os.path.join(staging, "tokenizer.json"), "w", encoding="utf-8") as handle:
            handle.write(tokenizer.to_str(pretty=True) + "\n")
        write_json(os.path.join(staging, "tokenizer_config.json"), tokenizer_config)
        write_json(os.path.join(staging, "special_tokens_map.json"), special_tokens_map)
        # mkdtemp makes 0700 directories; see _save_safetensors for why that matters.
        os.chmod(staging, 0o777 & ~umask())
        files = {name: file_sha256(os.path.join(staging, name)) for name in sorted(os.listdir(staging))}
        unchanged = os.path.isdir(output_dir) and all(
            os.path.isfile(os.path.join(output_dir, name)) and file_sha256(os.path.join(output_dir, name)) == sha
            for name, sha in files.items())
        if unchanged:
            shutil.rmtree(staging)
        else:
            _swap_into_place(staging, output_dir)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError):
            raise CheckpointError("cannot write the tiny checkpoint to %s: %s" % (output_dir, exc))
        raise

    digest = hashlib.sha256("".join("%s %s\n" % item for item in sorted(files.items())).encode()).hexdigest()
    summary = dict(dims)
    summary.update(path=output_dir, changed=not unchanged, seed=seed, files=files, digest=digest,
                   num_parameters=int(sum(t.size for t in tensors.values())),
                   tokenizer_vocab_size=tokenizer_vocab, format_version=FORMAT_VERSION,
                   bos_token_id=ids[BOS_TOKEN], eos_token_id=ids[EOS_TOKEN], pad_token_id=ids[PAD_TOKEN])
    return summary
