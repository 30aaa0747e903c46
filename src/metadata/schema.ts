/**
 * What the metadata store holds. One document, changed only in transactions.
 *
 *   images      image id (the config digest) -> the image
 *   references  'docker.io/library/busybox:latest' or '…/busybox@sha256:…' -> image id
 *   layers      chain id -> the layer (a committed snapshot of the same key)
 *   containers  container id -> the container (owned by src/containers)
 */
export interface ImageRecord {
  id: string;
  /** Chain ids of the layers, bottom first. */
  layers: string[];
  /** Digests of the manifests (and indexes) this image was pulled, loaded or pushed as. */
  manifests: string[];
  /** The image this one was made from (commit and build), when known. */
  parent?: string;
  /** When this engine got the image. */
  loaded: string;
}

export interface LayerRecord {
  chainId: string;
  diffId: string;
  parent?: string;
  /** Bytes of file content in the layer, as docker reports it. */
  size: number;
}

export interface MetadataV1 {
  version: 1;
  images: Record<string, ImageRecord>;
  references: Record<string, string>;
  layers: Record<string, LayerRecord>;
  containers: Record<string, unknown>;
}

export function emptyMetadata(): MetadataV1 {
  return { version: 1, images: {}, references: {}, layers: {}, containers: {} };
}
