export { CfsslSigner, type CfsslSignerOptions } from "./cfssl/cfssl-signer.js";
