/** What both benchmark pages expose to the driver, so the two sides are called the same way. */
export interface LoadConfig {
  /** The secure side's manifest, or the plain side's .onnx. */
  url: string;
  /** Plain side: external-data files beside the .onnx, which onnxruntime-web fetches itself. */
  externalData?: string[];
  threads: number;
  /** Secure side: loadModel's IndexedDB cache. */
  cache: boolean;
  licenseServer: string;
  credential: string;
  publisherKey: object;
}

export interface LoadReport {
  ms: number;
  /** Bytes fetched from the network for the model (0 when every byte came from a cache). */
  networkBytes: number;
  /** Model requests that went to the network. */
  networkRequests: number;
  threads: number;
  isolated: boolean;
  backend: string;
}

export interface BenchApi {
  load(config: LoadConfig): Promise<LoadReport>;
  /** Median of `runs` runs on input `name` filled with 0.5, after 3 warm-up runs. */
  run(name: string, dims: number[], runs: number): Promise<number>;
}

declare global {
  interface Window {
    bench: BenchApi;
  }
}
