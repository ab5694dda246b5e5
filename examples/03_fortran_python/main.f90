! Example 03: a Fortran array put with the default layout reads back in Python with the
! same indexing: a(i,j,k) == arr[i-1, j-1, k-1]. (read_back.py checks every element.)
program example03
  use, intrinsic :: iso_fortran_env, only: real64, int32
  use insitu
  implicit none
  type(insitu_client) :: c
  real(real64) :: a(3, 4, 2)
  integer(int32) :: ids(5)
  integer :: i, j, k
  character(len=256) :: address
  call get_command_argument(1, address)
  do k = 1, 2
    do j = 1, 4
      do i = 1, 3
        a(i, j, k) = 100.0_real64 * i + 10.0_real64 * j + k
      end do
    end do
  end do
  ids = [(i * i, i = 1, 5)]
  call c%connect(trim(address))
  call c%put_tensor("a", a)
  call c%put_tensor("ids", ids)
  call c%put_tensor("a_raw", a, layout=INSITU_LAYOUT_CONTIGUOUS)
  print '(a)', "example 03: Fortran put OK"
end program example03
