using System.Runtime.CompilerServices;

namespace SharpInfer.Tensors;

// Fixed-length inline arrays used as fields of the block structs, so a block can be viewed in place
// (MemoryMarshal.Cast<byte, BlockXxx>) and its arrays used as spans without unsafe code.
#pragma warning disable CS0169, IDE0051 // the single element field is how [InlineArray] declares its element type

[InlineArray(4)] internal struct Bytes4 { private byte _e; }
[InlineArray(8)] internal struct Bytes8 { private byte _e; }
[InlineArray(12)] internal struct Bytes12 { private byte _e; }
[InlineArray(16)] internal struct Bytes16 { private byte _e; }
[InlineArray(32)] internal struct Bytes32 { private byte _e; }
[InlineArray(64)] internal struct Bytes64 { private byte _e; }
[InlineArray(128)] internal struct Bytes128 { private byte _e; }
[InlineArray(16)] internal struct SBytes16 { private sbyte _e; }
[InlineArray(32)] internal struct SBytes32 { private sbyte _e; }
[InlineArray(256)] internal struct SBytes256 { private sbyte _e; }
[InlineArray(16)] internal struct Int16x16 { private short _e; }

#pragma warning restore CS0169, IDE0051
