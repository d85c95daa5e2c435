/* A tiny Llama-3-shaped model with random weights in every weight type adakv reads, written
 * deterministically, so that llama.cpp and adakv can be compared on code paths the default
 * model (SmolLM2: Q4_1/Q8_0, head_dim 64, tied head, BPE) never takes.
 *
 * Shape: n_embd 512, 3 layers, 4 query heads of 128 dims over 1 KV head (GQA 4), n_ff 768,
 * RoPE base 500000 with Llama 3.1's per-frequency factors (rope_freqs.weight), an untied Q6_K
 * output head, and a 300-token SentencePiece vocabulary (<unk> <s> </s>, 256 byte tokens, 41
 * pieces). Weight types by layer: 0 as a Q4_K_M file (Q4_K, with Q6_K attn_v and ffn_down),
 * 1 the 32-blocks (Q4_0 Q4_1 Q5_0 Q5_1 Q8_0) and Q5_K, 2 the floats (F16 BF16 F32) and Q5_K;
 * token_embd Q4_K. Quant blocks are random bytes with scales chosen so that weights are of
 * order 0.03, as in trained models.
 *
 * The same writer makes Qwen2-, Qwen3- and Gemma-3-shaped variants (tiny_llama_write's variant).
 *
 * tests/make-tiny-llama writes it for tools/golden/make-tiny-logits.py (llama.cpp's logits);
 * tests/test_tiny_llama compares adakv's with them. Any change to tiny-llama.c changes the file:
 * rerun that script (its .json records the file's sha256). */
#ifndef ADAKV_TESTS_TINY_LLAMA_H
#define ADAKV_TESTS_TINY_LLAMA_H

enum { TINY_LLAMA_VOCAB = 300, TINY_GEMMA3_WINDOW = 48 };

/* Writes the model to path (aborts on I/O errors, like the GGUF writer). variant: "llama", or a
 * relative of the llama family on the same weights: "qwen2" (adds Q/K/V biases, NEOX RoPE, no
 * RoPE factor table), "qwen3" (adds per-head Q/K RMSNorm weights, NEOX RoPE, no table, and
 * n_embd 256 with attention 512 wide, as Qwen3 models have Q wider than the residual) or
 * "qwen2-yarn" (qwen2 with YaRN metadata: factor 4 over an original context of 2048) or
 * "gemma3" (the llama weights with gemma3's blocks: per-head Q/K norms, post-attention and
 * post-FFN norms, GELU-tanh gate, embeddings scaled by sqrt(n_embd), NEOX RoPE; layers 0 and 1
 * slide over windows of TINY_GEMMA3_WINDOW positions with RoPE base 10000, layer 2 is global
 * with base 1e6 scaled linearly 8x; logits soft-capped at 10).
 * Returns 0, or -1 for an unknown variant. */
int tiny_llama_write(const char *path, const char *variant);

#endif
