/** The KMS encryption context a model's content key is sealed under: binds the ciphertext to its row. */
export function kekContext(model: { id: string; version: number; content_key_id: string }): string {
  return `modelvault/cek|${model.id}|${model.version}|${model.content_key_id}`;
}
