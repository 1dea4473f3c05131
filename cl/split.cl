/* The two-device split's copies within one device: rows of `width` floats from a buffer whose rows are
 * src_pitch apart into one whose rows are dst_pitch apart (a column's channels into the gathered tensor
 * and back; OpenCL's rect copy refuses different pitches within one buffer). One work-item per float:
 * gid = row · width + column. */

__kernel void copy_rows(__global const float *src, ulong src_off, ulong src_pitch, __global float *dst,
                        ulong dst_off, ulong dst_pitch, ulong width) {
  const ulong gid = get_global_id(0);
  const ulong row = gid / width, col = gid - row * width;
  dst[dst_off + row * dst_pitch + col] = src[src_off + row * src_pitch + col];
}
