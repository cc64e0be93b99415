// The FastCGI codec: decoder (web server → application), encoders for both directions, the
// record layer and name-value pairs.
export * from './constants.ts';
export * from './decoder.ts';
export * from './encoder.ts';
export * from './name-value.ts';
export * from './records.ts';
