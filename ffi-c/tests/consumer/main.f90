program consumer
  use, intrinsic :: iso_fortran_env, only: real64
  use insitu
  implicit none
  type(insitu_client) :: c
  real(real64) :: a(2, 2), b(2, 2)
  a = reshape([1.0_real64, 2.0_real64, 3.0_real64, 4.0_real64], [2, 2])
  call c%connect("inproc")
  call c%put_tensor("a", a)
  call c%get_tensor("a", b)
  if (any(a /= b)) error stop 1
  print '(a)', "consumer Fortran OK"
end program consumer
