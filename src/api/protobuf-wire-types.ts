/** Protobuf's wire types: the low three bits of a field's tag say how its value is framed. */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const START_GROUP = 3;
export const END_GROUP = 4;
export const I32 = 5;
