export { SHA256_HEX_PATTERN, isSha256Hex, sha256File } from "./checksum.js";
export { DEFAULT_EXTRACT_LIMITS, RATIO_FLOOR_BYTES, extractZip } from "./extract.js";
export type { ExtractLimits, ExtractResult } from "./extract.js";
export { compileGlob, segmentMatches } from "./glob.js";
export type { Glob } from "./glob.js";
export { TransferError, downloadFile, uploadFile } from "./transfer.js";
export type { DownloadOptions, TransferOptions } from "./transfer.js";
export { zipDirectory } from "./zip.js";
export type { ZipResult } from "./zip.js";
